import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CallDeadlines, MAX_LANES } from '../../src/client/call-deadlines.js';

/** Resolves with the milliseconds from now until `deadlines` expires a deadline of `timeoutMs`. */
function expiry(deadlines: CallDeadlines, timeoutMs: number): Promise<number> {
  const start = performance.now();
  return new Promise((resolve) => {
    deadlines.add(timeoutMs, () => resolve(performance.now() - start));
  });
}

describe('CallDeadlines: the deadlines of pending calls on one timer (D41)', () => {
  test('each deadline expires once, never before its time', async () => {
    const deadlines = new CallDeadlines();
    const elapsed = await Promise.all([expiry(deadlines, 20), expiry(deadlines, 20)]);
    for (const ms of elapsed) {
      assert.ok(ms >= 20, `expired after ${ms} ms`);
      assert.ok(ms < 1_000, `expired after ${ms} ms`);
    }
  });

  test('a cancelled deadline does not expire; cancelling twice is harmless', async () => {
    const deadlines = new CallDeadlines();
    let expired = 0;
    const first = deadlines.add(10, () => expired++);
    deadlines.cancel(first);
    deadlines.cancel(first);
    // The timer armed for the cancelled head fires, finds nothing due, and waits for the next.
    const later = await expiry(deadlines, 40);
    assert.equal(expired, 0);
    assert.ok(later >= 40, `the next one expired after ${later} ms`);
  });

  test('a lane emptied after every call (a sequential caller) keeps working', async () => {
    const deadlines = new CallDeadlines();
    let expired = 0;
    for (let i = 0; i < 1_000; i++) deadlines.cancel(deadlines.add(15, () => expired++));
    const last = await expiry(deadlines, 15);
    assert.equal(expired, 0);
    assert.ok(last >= 15, `expired after ${last} ms`);
  });

  test('cancelling the middle of a lane keeps the others', async () => {
    const deadlines = new CallDeadlines();
    const order: string[] = [];
    deadlines.add(15, () => order.push('a'));
    const b = deadlines.add(15, () => order.push('b'));
    const done = new Promise<void>((resolve) =>
      deadlines.add(15, () => {
        order.push('c');
        resolve();
      }),
    );
    deadlines.cancel(b);
    await done;
    assert.deepEqual(order, ['a', 'c']);
  });

  test('a shorter timeout added later expires first', async () => {
    const deadlines = new CallDeadlines();
    const order: number[] = [];
    const long = expiry(deadlines, 60).then(() => order.push(60));
    const short = expiry(deadlines, 15).then((ms) => {
      order.push(15);
      return ms;
    });
    const shortMs = await short;
    await long;
    assert.deepEqual(order, [15, 60]);
    assert.ok(shortMs >= 15 && shortMs < 60, `the short one expired after ${shortMs} ms`);
  });

  test(`more than ${MAX_LANES} distinct timeouts at once: each still expires, or is cancelled`, async () => {
    const deadlines = new CallDeadlines();
    const timeouts = Array.from({ length: MAX_LANES + 4 }, (_, i) => 10 + i);
    let cancelledExpired = 0;
    const firstExpired: Array<Promise<void>> = [];
    const cancelled = timeouts.map((ms) => {
      let expired!: () => void;
      firstExpired.push(new Promise<void>((resolve) => (expired = resolve)));
      return deadlines.add(ms, () => {
        cancelledExpired++;
        expired();
      });
    });
    const elapsed = await Promise.all(timeouts.map((ms) => expiry(deadlines, ms)));
    // A deadline on a timer of its own may come a moment after a later one of the same
    // timeout (its timer came early by Node's clock and waited again).
    await Promise.all(firstExpired);
    for (const deadline of cancelled) deadlines.cancel(deadline);
    timeouts.forEach((ms, i) => assert.ok((elapsed[i] ?? 0) >= ms, `${ms} ms: ${elapsed[i]}`));
    // The cancelled ones were cancelled only after theirs had expired: all of them counted.
    assert.equal(cancelledExpired, timeouts.length);
  });

  test('lanes left empty give up their slot to a new timeout', async () => {
    const deadlines = new CallDeadlines();
    for (let i = 0; i < MAX_LANES; i++) deadlines.cancel(deadlines.add(1_000 + i, () => undefined));
    const elapsed = expiry(deadlines, 15);
    const another = deadlines.add(2_000, () => undefined);
    assert.notEqual(another.lane, undefined, 'in a lane, not on a timer of its own');
    deadlines.cancel(another);
    assert.ok((await elapsed) >= 15);
  });

  test('a deadline added by an expiring one is kept', async () => {
    const deadlines = new CallDeadlines();
    const second = await new Promise<number>((resolve) => {
      deadlines.add(10, () => {
        void expiry(deadlines, 10).then(resolve);
      });
    });
    assert.ok(second >= 10);
  });

  test('close() stops every deadline', async () => {
    const deadlines = new CallDeadlines();
    let expired = 0;
    deadlines.add(5, () => expired++);
    deadlines.close();
    // A deadline added after close() runs on a timer of its own again.
    await expiry(deadlines, 20);
    assert.equal(expired, 0);
  });

  test('no deadline waiting: the timer does not keep the process alive', async () => {
    // A 60 s deadline cancelled at once, then a 20 ms one that expires: the process must
    // exit right after, not when the timer armed for the first would have fired.
    const module = fileURLToPath(new URL('../../src/client/call-deadlines.ts', import.meta.url));
    const script = `
      import { CallDeadlines } from ${JSON.stringify(module)};
      const deadlines = new CallDeadlines();
      deadlines.cancel(deadlines.add(60_000, () => console.log('too late')));
      deadlines.add(20, () => console.log('expired'));
    `;
    const started = performance.now();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { timeout: 30_000 },
    );
    assert.equal(stdout.trim(), 'expired');
    assert.ok(performance.now() - started < 30_000);
  });
});
