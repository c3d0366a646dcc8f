// A server crash redelivers a whole batch (issue 19, D36): every entry runs again on the
// server that gets it, answered ones included, and deduplication does not apply (idempotent
// calls are never batched). The caller keeps the first reply of each call and drops the
// second as unmatched. The crashing server reaches the broker through a FaultProxy.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, type HandlerContext } from '../../src/index.js';
import { FaultProxy } from '../../src/testing/index.js';
import {
  AMQP_URL,
  connectForTest,
  deferred,
  eventually,
  failOnUnhandled,
  uniqueQueue,
} from '../helpers.js';

failOnUnhandled();

interface Run {
  readonly request: number;
  readonly redelivered: boolean;
  readonly messageId: string | undefined;
}

describe('a server crash mid-batch', () => {
  test('the whole batch is redelivered: every entry runs again, answered ones included', async () => {
    await using proxy = await FaultProxy.start(AMQP_URL);
    const crashing = await connect({
      url: proxy.url(AMQP_URL),
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    const caller = await connectForTest();
    const queue = uniqueQueue('dbatch.crash');
    const onA: Run[] = [];
    const onB: Run[] = [];
    let crashMode = false;
    const allOnA = deferred();
    try {
      await crashing.serve(queue, async (request: number, ctx: HandlerContext) => {
        if (!crashMode) return `a:${request}`;
        onA.push({ request, redelivered: ctx.redelivered, messageId: ctx.messageId });
        if (onA.length === 6) allOnA.resolve();
        // Calls 0-2 answer at once; 3-5 are still running when the connection dies.
        if (request >= 3)
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        return `a:${request}`;
      });
      // Until the caller knows the queue reads batches.
      while (caller.stats().batches === 0) {
        await Promise.all(Array.from({ length: 10 }, (_, i) => caller.call(queue, i)));
      }
      crashMode = true;
      const batchesBefore = caller.stats().batches;
      const unmatchedBefore = caller.stats().unmatchedReplies;
      const replies: Array<string | undefined> = [];
      const calls = Array.from({ length: 6 }, (_, i) =>
        caller.call<string>(queue, i, { timeoutMs: 20_000 }).then((reply) => {
          replies[i] = reply;
        }),
      );
      await allOnA.promise;
      assert.equal(caller.stats().batches - batchesBefore, 1, 'the six calls went as one batch');
      await eventually(() => replies.filter(Boolean).length === 3, 'the first three replies');
      // The server dies with 3 entries answered and 3 running; it does not come back.
      proxy.refuse();
      proxy.resetAll();
      const other = await connectForTest();
      await other.serve(queue, (request: number, ctx: HandlerContext) => {
        onB.push({ request, redelivered: ctx.redelivered, messageId: ctx.messageId });
        return `b:${request}`;
      });
      await Promise.all(calls);
      // Every entry ran again on the second server, redelivered, the answered ones too:
      // calls 0-2 ran twice. The server's deduplication (keyed by message_id, which only
      // idempotent calls carry, and they are never batched) does not apply; ctx.messageId
      // (the call's correlation id) is the same on both runs, for a handler's own checks.
      assert.deepEqual(onB.map((run) => run.request).sort(), [0, 1, 2, 3, 4, 5]);
      assert.ok(onB.every((run) => run.redelivered));
      const idsOn = (runs: Run[]) =>
        runs
          .map((run) => `${run.request}=${run.messageId ?? '?'}`)
          .sort()
          .join(' ');
      assert.equal(idsOn(onB), idsOn(onA));
      // The caller kept the first reply of each call; the second ones are unmatched.
      assert.deepEqual(replies, ['a:0', 'a:1', 'a:2', 'b:3', 'b:4', 'b:5']);
      await eventually(
        () => caller.stats().unmatchedReplies - unmatchedBefore === 3,
        'the three late replies counted as unmatched',
      );
      assert.deepEqual(caller.stats().errors, {});
    } finally {
      await crashing.close();
    }
  });

  test('idempotent calls are never batched (each carries its message id for deduplication)', async () => {
    const server = await connectForTest();
    const caller = await connectForTest();
    const queue = uniqueQueue('dbatch.idem');
    await server.serve(queue, (request: number) => request);
    while (caller.stats().batches === 0) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => caller.call(queue, i)));
    }
    const before = caller.stats().batches;
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => caller.call(queue, i, { idempotent: true })),
    );
    assert.deepEqual(
      replies,
      Array.from({ length: 10 }, (_, i) => i),
    );
    assert.equal(caller.stats().batches, before);
  });
});
