/**
 * Caller identity (user_id) through the in-memory broker, which refuses a user_id other
 * than the connection's user like RabbitMQ. test/slow/identity.test.ts does the same
 * against a real broker with real users.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { connect, type ConnectOptions, type HandlerContext } from '../../src/index.js';
import { MemoryBroker } from '../../src/testing/index.js';
import { failOnUnhandled } from '../helpers.js';
import { code, FAST_RECONNECT } from './memory-helpers.js';

failOnUnhandled();

async function connectAs(
  broker: MemoryBroker,
  url: string,
  options: Omit<ConnectOptions, 'url' | 'transport'> = {},
) {
  const rpc = await connect({
    url,
    transport: broker.transport,
    reconnect: FAST_RECONNECT,
    ...options,
  });
  after(() => rpc.close());
  return rpc;
}

describe('user_id over the memory broker', () => {
  test("requests carry the URL's user; the handler reads it as ctx.userId", async () => {
    const broker = new MemoryBroker();
    const server = await connectAs(broker, 'amqp://srv@memory');
    await server.serve('who', (_request, ctx: HandlerContext) => ctx.userId ?? null);
    const alice = await connectAs(broker, 'amqp://alice:pw@memory');
    const anonymous = await connectAs(broker, 'amqp://memory');
    assert.equal(await alice.call('who', null), 'alice');
    assert.equal(await anonymous.call('who', null), 'guest');
  });

  for (const replyMode of ['queue', 'direct', 'expiring-queue'] as const) {
    test(`replyMode ${replyMode}: a forged userId fails with PERMISSION_DENIED, never handled, each call alike`, async () => {
      const broker = new MemoryBroker();
      const server = await connectAs(broker, 'amqp://srv@memory');
      let handled = 0;
      await server.serve('who', () => ++handled);
      const forger = await connectAs(broker, 'amqp://bob@memory', { userId: 'alice', replyMode });
      await assert.rejects(
        forger.call('who', null, { timeoutMs: 2_000 }),
        code('PERMISSION_DENIED'),
      );
      // The next call opens a new publishing channel and is refused the same way.
      await assert.rejects(
        forger.call('who', null, { timeoutMs: 2_000 }),
        code('PERMISSION_DENIED'),
      );
      assert.equal(forger.state, 'connected');
      assert.equal(handled, 0);
    });
  }

  test('userId: false sends none; a requireUserId server refuses it with UNAUTHENTICATED', async () => {
    const broker = new MemoryBroker();
    const server = await connectAs(broker, 'amqp://srv@memory');
    let handled = 0;
    await server.serve('strict', () => ++handled, { requireUserId: true });
    await server.serve('lax', (_request, ctx: HandlerContext) => ctx.userId ?? 'none');
    const nobody = await connectAs(broker, 'amqp://alice@memory', { userId: false });
    await assert.rejects(nobody.call('strict', null), code('UNAUTHENTICATED'));
    assert.equal(await nobody.call('lax', null), 'none');
    const alice = await connectAs(broker, 'amqp://alice@memory');
    assert.equal(await alice.call('strict', null), 1);
    assert.equal(handled, 1);
    assert.equal(broker.queue('strict')?.messageCount, 0, 'the refused request was acked');
    assert.equal(broker.queue('strict')?.unackedCount, 0);
  });
});
