// The pieces of `rabbit-rpc bench` that need no broker: the latency histogram, the closed
// loop (with fake calls) and the progress line.
import assert from 'node:assert/strict';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { RpcError } from '../../src/errors.js';
import { PhaseTally, runPhase } from '../../src/cli/bench-load.js';
import { LatencyHistogram, percentile } from '../../src/cli/latency.js';
import { ProgressLine } from '../../src/cli/progress.js';

describe('latency', () => {
  test('percentile is nearest-rank: always a measured value', () => {
    const sorted = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.equal(percentile(sorted, 50), 5);
    assert.equal(percentile(sorted, 90), 9);
    assert.equal(percentile(sorted, 99), 10);
    assert.equal(percentile(sorted, 100), 10);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  test('the histogram gives the exact percentiles within 1%, min and max exactly', () => {
    // A skewed spread from 20 µs to 3 s, like latencies with a long tail.
    const values: number[] = [];
    let seed = 42;
    for (let k = 0; k < 20_000; k++) {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      values.push(0.02 * Math.exp((seed / 2_147_483_648) * 12));
    }
    const histogram = new LatencyHistogram();
    for (const value of values) histogram.record(value);
    const sorted = values.toSorted((a, b) => a - b);
    for (const p of [1, 50, 90, 99, 99.9]) {
      const exact = percentile(sorted, p);
      const approximate = histogram.percentile(p);
      assert.ok(
        Math.abs(approximate - exact) <= exact * 0.01 + 1e-9,
        `p${p}: ${approximate} is not within 1% of ${exact}`,
      );
    }
    assert.equal(histogram.count, values.length);
    assert.equal(histogram.min, sorted[0]);
    assert.equal(histogram.max, sorted.at(-1));
    assert.equal(histogram.percentile(100), sorted.at(-1));
  });

  test('percentiles stay ordered and within the recorded range, even for tiny and huge values', () => {
    const histogram = new LatencyHistogram();
    for (const value of [0, 0.0001, 0.5, 0.5, 7, 3e9]) histogram.record(value);
    const ps = [0.1, 50, 90, 99, 99.9, 100].map((p) => histogram.percentile(p));
    assert.deepEqual(
      ps,
      ps.toSorted((a, b) => a - b),
    );
    // Below 1 µs everything shares the first bucket.
    assert.ok(ps[0] !== undefined && ps[0] <= 0.001);
    assert.equal(ps.at(-1), 3e9);
  });

  test('an empty histogram has no percentiles', () => {
    const histogram = new LatencyHistogram();
    assert.ok(Number.isNaN(histogram.percentile(50)));
    assert.ok(Number.isNaN(histogram.max));
    assert.ok(Number.isNaN(histogram.mean));
  });
});

/** A fake call that settles when the test says so, counting how many are in flight. */
class FakeServer {
  inFlight = 0;
  maxInFlight = 0;
  readonly #waiting: Array<() => void> = [];

  readonly call = (): Promise<unknown> => {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve) => {
      this.#waiting.push(() => {
        this.inFlight--;
        resolve('ok');
      });
    });
  };

  /** Answers every call waiting now. */
  answerAll(): number {
    const waiting = this.#waiting.splice(0);
    for (const answer of waiting) answer();
    return waiting.length;
  }
}

describe('runPhase', () => {
  test('keeps exactly `concurrency` calls in flight and stops after `calls`', async () => {
    const server = new FakeServer();
    const tally = new PhaseTally();
    const phase = runPhase(server.call, 8, { calls: 100 }, tally, new AbortController().signal);
    let answered = 0;
    while (answered < 100) {
      await nextTurn();
      assert.ok(server.inFlight === 8 || answered + server.inFlight === 100, 'in flight');
      answered += server.answerAll();
    }
    const outcome = await phase;
    assert.equal(server.maxInFlight, 8);
    assert.equal(tally.issued, 100);
    assert.equal(tally.succeeded, 100);
    assert.equal(tally.latency.count, 100);
    assert.equal(outcome.complete, true);
  });

  test('counts failures by code, and takes no latency for them', async () => {
    let k = 0;
    const call = (): Promise<unknown> => {
      k++;
      if (k % 5 === 0) return Promise.reject(new RpcError('INVALID_ARGUMENT', `bad ${k}`));
      if (k % 7 === 0) return Promise.reject(new Error('not an RpcError'));
      return Promise.resolve(k);
    };
    const tally = new PhaseTally();
    await runPhase(call, 4, { calls: 70 }, tally, new AbortController().signal);
    assert.equal(tally.completed, 70);
    assert.deepEqual(Object.fromEntries(tally.errors), { INVALID_ARGUMENT: 14, UNKNOWN: 8 });
    assert.equal(tally.failed, 22);
    assert.equal(tally.latency.count, 48);
    assert.equal(tally.examples.get('INVALID_ARGUMENT')?.message, 'bad 5');
  });

  test('calls that fail at once do not starve timers (a duration still ends)', async () => {
    const tally = new PhaseTally();
    const call = (): Promise<unknown> => Promise.reject(new RpcError('UNAVAILABLE', 'closed'));
    let timerRan = false;
    const timer = setTimeout(() => (timerRan = true), 1);
    await runPhase(call, 16, { durationMs: 50 }, tally, new AbortController().signal);
    clearTimeout(timer);
    assert.ok(timerRan, 'a timer could not run while the loop went on');
    assert.ok(tally.failed > 0);
    assert.equal(tally.errors.get('UNAVAILABLE'), tally.failed);
  });

  test('stop: returns at once, and calls still in flight are not counted', async () => {
    const server = new FakeServer();
    const tally = new PhaseTally();
    const stop = new AbortController();
    const phase = runPhase(server.call, 4, { durationMs: 60_000 }, tally, stop.signal);
    await nextTurn();
    server.answerAll();
    await nextTurn();
    assert.equal(tally.succeeded, 4);
    stop.abort();
    const outcome = await phase;
    assert.equal(outcome.complete, false);
    server.answerAll();
    await nextTurn();
    assert.equal(tally.succeeded, 4, 'a call answered after the stop was counted');
  });
});

/**
 * Resolves when `onDraw` is next called. The line's own timer is unref'd (it never keeps a
 * process alive), so a safety-net timer keeps this test's process alive meanwhile.
 */
function nextDraw(): { promise: Promise<void>; onDraw: () => void } {
  let onDraw = (): void => undefined;
  const promise = new Promise<void>((resolve, reject) => {
    const safetyNet = setTimeout(() => reject(new Error('the line never drew')), 10_000);
    onDraw = () => {
      clearTimeout(safetyNet);
      resolve();
    };
  });
  return { promise, onDraw };
}

describe('ProgressLine', () => {
  test('on a terminal: redraws one line in place, and erases it on stop', async () => {
    const written: string[] = [];
    const drawn = nextDraw();
    const stream = {
      isTTY: true,
      write(text: string) {
        written.push(text);
        drawn.onDraw();
      },
    };
    let n = 0;
    const line = new ProgressLine(stream, () => `step ${++n}`, 1);
    line.start();
    await drawn.promise;
    line.stop();
    assert.equal(written[0], '\r\u001b[Kstep 1');
    assert.equal(written.at(-1), '\r\u001b[K');
    assert.ok(written.every((text) => !text.includes('\n')));
  });

  test('piped or redirected: writes nothing', async () => {
    const written: string[] = [];
    const piped = new ProgressLine({ write: (text) => written.push(text) }, () => 'x', 1);
    piped.start();
    // A terminal line with the same interval, started later, has drawn: the piped one would have.
    const drawn = nextDraw();
    const terminal = new ProgressLine({ isTTY: true, write: drawn.onDraw }, () => 'y', 1);
    terminal.start();
    await drawn.promise;
    terminal.stop();
    piped.stop();
    assert.deepEqual(written, []);
    assert.equal(piped.enabled, false);
  });
});
