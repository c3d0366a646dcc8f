/**
 * Cancellation, streams and broadcast through the in-memory broker: the control plane's
 * exchange and queues work without RabbitMQ, so handlers using them can be unit-tested.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, RpcError } from '../../src/index.js';
import { MemoryBroker } from '../../src/testing/index.js';
import { deferred, eventually, failOnUnhandled } from '../helpers.js';
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

describe('rpc.close() with calls pending', () => {
  test('checks once that the control exchange exists, not once per call it cancels', async () => {
    const broker = new MemoryBroker();
    const raw = await broker.connectClient();
    await (await raw.channel()).queueDeclare('nobody', { durable: false });
    let channelsOpened = 0;
    const rpc = await connect({
      url: 'amqp://memory',
      // Counts the channels the connection opens.
      transport: async (url, options) => {
        const client = await broker.transport(url, options);
        const open = client.channel.bind(client);
        client.channel = () => {
          channelsOpened++;
          return open();
        };
        return client;
      },
    });
    // No rabbit-rpc server has run here: no control exchange; these calls stay pending.
    const calls = Array.from({ length: 200 }, () =>
      rpc.call('nobody', null, { timeoutMs: 30_000 }).catch((error: unknown) => error),
    );
    await eventually(() => broker.queue('nobody')?.messageCount === 200, 'the calls published');
    const before = channelsOpened;
    await rpc.close();
    for (const error of await Promise.all(calls)) assert.ok(code('CANCELLED')(error));
    assert.ok(channelsOpened - before <= 2, `close() opened ${channelsOpened - before} channels`);
  });
});
