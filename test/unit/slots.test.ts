// The bounds a server keeps on what it runs (src/slots.ts), on stream credit
// (src/stream-credit.ts) and on batches (ServeOptions.batch): no broker involved.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RpcError } from '../../src/errors.js';
import { resolveServeOptions } from '../../src/options/serve.js';
import { Slots } from '../../src/server/slots.js';
import { StreamCredit } from '../../src/server/stream-credit.js';

describe('Slots', () => {
  test('at most `limit` held; waiters are served in arrival order as slots come back', async () => {
    const slots = new Slots(2);
    assert.equal(slots.tryTake(), true);
    assert.equal(slots.tryTake(), true);
    assert.equal(slots.tryTake(), false);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) => slots.take().then(() => order.push(n)));
    assert.equal(slots.waiting, 3);
    slots.give();
    await waiting[0];
    assert.deepEqual(order, [1]);
    // A free slot goes to a waiter, never to a newcomer that did not wait.
    slots.give();
    assert.equal(slots.tryTake(), false);
    await waiting[1];
    slots.give();
    await waiting[2];
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(slots.waiting, 0);
    slots.give();
    slots.give();
    assert.equal(slots.tryTake(), true);
    assert.equal(slots.tryTake(), true);
    assert.equal(slots.tryTake(), false);
  });

  test('thousands of waiters: each served once, in order', async () => {
    const slots = new Slots(1);
    assert.equal(slots.tryTake(), true);
    const served: number[] = [];
    const all = Array.from({ length: 5_000 }, (_, i) =>
      slots.take().then(() => {
        served.push(i);
        slots.give();
      }),
    );
    slots.give();
    await Promise.all(all);
    assert.deepEqual(
      served,
      Array.from({ length: 5_000 }, (_, i) => i),
    );
  });
});

describe('StreamCredit', () => {
  const never = new AbortController().signal;

  test('a grant beyond a window past what was sent is clamped', async () => {
    const credit = new StreamCredit(4);
    for (let seq = 0; seq < 4; seq++) await credit.ready(seq, never);
    // Item 3 may be on its way: 4 sent. A forged or broken grant of a billion:
    credit.grant(1_000_000_000);
    for (let seq = 4; seq < 8; seq++) await credit.ready(seq, never);
    let eighthSent = false;
    const eighth = credit.ready(8, never).then(() => (eighthSent = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(eighthSent, false, 'item 8 waits: only 4 past the 4 sent were granted');
    credit.grant(12); // what a caller that has read 8 grants
    await eighth;
  });

  test('a repeated or smaller grant changes nothing; credit never shrinks', async () => {
    const credit = new StreamCredit(2);
    await credit.ready(0, never);
    await credit.ready(1, never);
    credit.grant(1);
    credit.grant(2);
    credit.grant(3);
    await credit.ready(2, never);
  });
});

describe('ServeOptions.batch', () => {
  test('defaults, false, bounds; bad values and unknown names are INVALID_ARGUMENT', () => {
    assert.deepEqual(resolveServeOptions().batch, { maxEntries: 1_000, maxBytes: 1024 * 1024 });
    assert.equal(resolveServeOptions({ batch: false }).batch, false);
    assert.deepEqual(resolveServeOptions({ batch: true }).batch, {
      maxEntries: 1_000,
      maxBytes: 1024 * 1024,
    });
    assert.deepEqual(resolveServeOptions({ batch: { maxEntries: 5 } }).batch, {
      maxEntries: 5,
      maxBytes: 1024 * 1024,
    });
    for (const bad of [{ maxEntries: 0 }, { maxBytes: -1 }, { maxEntrys: 5 }, 'yes']) {
      assert.throws(
        () => resolveServeOptions({ batch: bad as never }),
        (error: unknown) => error instanceof RpcError && error.code === 'INVALID_ARGUMENT',
      );
    }
  });
});
