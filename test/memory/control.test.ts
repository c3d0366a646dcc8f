/**
 * Cancellation, streams and broadcast through the in-memory broker: the control plane's
 * exchange and queues work without RabbitMQ, so handlers using them can be unit-tested.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RpcError } from '../../src/index.js';
import { deferred, failOnUnhandled } from '../helpers.js';
import { code, connectMemory, setup } from './memory-helpers.js';

failOnUnhandled();

describe('the control plane over the memory broker', () => {
  test("a caller's abort aborts the handler with CANCELLED", async () => {
    const { broker, rpc: caller } = await setup();
    const server = await connectMemory(broker);
    const started = deferred<AbortSignal>();
    const aborted = deferred<unknown>();
    await server.serve('slow', async (_request, ctx) => {
      started.resolve(ctx.signal);
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      aborted.resolve(ctx.signal.reason);
      return 'stopped';
    });
    const abort = new AbortController();
    const call = caller.call('slow', null, { signal: abort.signal });
    await started.promise;
    abort.abort();
    await assert.rejects(call, code('CANCELLED'));
    const reason = await aborted.promise;
    assert.ok(reason instanceof RpcError && reason.code === 'CANCELLED');
  });

  test('a stream with a window of 2 delivers every item in order', async () => {
    const { rpc } = await setup();
    // eslint-disable-next-line @typescript-eslint/require-await -- a generator handler
    await rpc.serve('count', async function* (request) {
      for (let i = 0; i < (request as number); i++) yield i;
    });
    const items: number[] = [];
    for await (const item of rpc.stream<number>('count', 20, { window: 2 })) items.push(item);
    assert.deepEqual(
      items,
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  test('a broadcast reaches each serving connection once', async () => {
    const { broker, rpc: caller } = await setup();
    for (const name of ['a', 'b']) {
      await (await connectMemory(broker)).serve('status', () => name);
    }
    const replies = await caller.broadcast<string>('status', null, { max: 2, timeoutMs: 5_000 });
    assert.deepEqual(replies.map((reply) => (reply.ok ? reply.reply : '')).sort(), ['a', 'b']);
    assert.deepEqual(await caller.broadcast('nobody', null), []);
  });
});
