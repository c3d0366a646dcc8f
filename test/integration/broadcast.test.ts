// Scatter-gather (issue 7, part 4) on the real broker: a broadcast reaches every server
// instance of a queue and collects their replies until `max` or the timeout.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RpcError, type BroadcastReply } from '../../src/index.js';
import { connectForTest, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

const byInstance = (replies: readonly BroadcastReply[]) =>
  [...replies].sort((a, b) => a.instance.localeCompare(b.instance));

describe('broadcast()', () => {
  test('every instance answers once; the queue itself is untouched', async () => {
    const caller = await connectForTest();
    const queue = uniqueQueue('bcast.all');
    const instances = await Promise.all([1, 2, 3].map(() => connectForTest()));
    let queued = 0;
    await Promise.all(
      instances.map((rpc, n) =>
        rpc.serve(queue, (request, ctx) => {
          if (ctx.headers['x-kind'] !== 'status') queued++;
          return { n, request };
        }),
      ),
    );
    const started = performance.now();
    const replies = await caller.broadcast<{ n: number; request: unknown }>(queue, 'status?', {
      timeoutMs: 500,
      headers: { 'x-kind': 'status' },
    });
    const elapsed = performance.now() - started;
    assert.equal(replies.length, 3);
    assert.deepEqual(replies.map((reply) => (reply.ok ? reply.reply.n : -1)).sort(), [0, 1, 2]);
    assert.ok(replies.every((reply) => reply.ok && reply.reply.request === 'status?'));
    assert.equal(new Set(replies.map((reply) => reply.instance)).size, 3);
    assert.ok(replies.every((reply) => reply.instance.length > 0));
    // Without `max` it collects until the timeout.
    assert.ok(elapsed >= 450, `${elapsed} ms`);
    assert.equal(queued, 0, 'no broadcast went through the work queue');
    assert.equal(caller.stats().pending, 0);
  });

  test('max: resolves as soon as that many replied', async () => {
    const caller = await connectForTest();
    const queue = uniqueQueue('bcast.max');
    for (const rpc of await Promise.all([connectForTest(), connectForTest()])) {
      await rpc.serve(queue, () => 'up');
    }
    const started = performance.now();
    const replies = await caller.broadcast(queue, null, { max: 1, timeoutMs: 10_000 });
    assert.equal(replies.length, 1);
    assert.ok(performance.now() - started < 5_000);
  });

  test("a handler's error comes back as that instance's error, with its code", async () => {
    const caller = await connectForTest();
    const queue = uniqueQueue('bcast.err');
    const [good, bad] = await Promise.all([connectForTest(), connectForTest()]);
    await good.serve(queue, () => 'fine');
    await bad.serve(queue, () => {
      throw new RpcError('FAILED_PRECONDITION', 'disk full');
    });
    const replies = await caller.broadcast(queue, null, { max: 2, timeoutMs: 5_000 });
    const outcomes = replies.map((reply) => (reply.ok ? reply.reply : reply.error.code)).sort();
    assert.deepEqual(outcomes, ['FAILED_PRECONDITION', 'fine']);
  });

  test('nothing serves the queue: no replies, at once', async () => {
    const caller = await connectForTest();
    const started = performance.now();
    assert.deepEqual(
      await caller.broadcast(uniqueQueue('bcast.none'), null, { timeoutMs: 5_000 }),
      [],
    );
    assert.ok(performance.now() - started < 2_000);
  });

  test('a closed server no longer answers', async () => {
    const caller = await connectForTest();
    const queue = uniqueQueue('bcast.closed');
    const [staying, leaving] = await Promise.all([connectForTest(), connectForTest()]);
    await staying.serve(queue, () => 'staying');
    const server = await leaving.serve(queue, () => 'leaving');
    await server.close();
    const replies = await caller.broadcast(queue, null, { timeoutMs: 400 });
    assert.deepEqual(
      byInstance(replies).map((reply) => (reply.ok ? reply.reply : null)),
      ['staying'],
    );
  });

  test('cancel and bad options reject with their codes', async () => {
    const caller = await connectForTest();
    const abort = new AbortController();
    const queue = uniqueQueue('bcast.cancel');
    await (await connectForTest()).serve(queue, () => 'x');
    const pending = caller.broadcast(queue, null, { signal: abort.signal, timeoutMs: 10_000 });
    abort.abort();
    await assert.rejects(pending, (error: RpcError) => error.code === 'CANCELLED');
    await assert.rejects(
      caller.broadcast(queue, null, { max: 0 }),
      (error: RpcError) => error.code === 'INVALID_ARGUMENT',
    );
    await assert.rejects(
      caller.broadcast('', null),
      (error: RpcError) => error.code === 'INVALID_ARGUMENT',
    );
  });
});
