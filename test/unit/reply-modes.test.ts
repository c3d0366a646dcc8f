/**
 * The three reply-mode strategies on the in-memory broker: what each opens, whether its
 * reply address survives a reconnect, and what happens to the calls waiting for replies
 * when the connection is lost.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryBroker } from '../../src/testing/index.js';
import { RpcError } from '../../src/errors.js';
import { SILENT_LOGGER } from '../../src/logger.js';
import { BodyPool } from '../../src/client/body-pool.js';
import { DirectReply } from '../../src/client/direct-reply.js';
import { ExpiringReplyQueue } from '../../src/client/expiring-reply-queue.js';
import { PendingCall, PendingCalls } from '../../src/client/pending.js';
import { ReplyQueue } from '../../src/client/reply-queue.js';
import { RetryPolicy } from '../../src/client/retry.js';
import type { ReplyMode } from '../../src/client/reply-mode.js';
import { DIRECT_REPLY_QUEUE } from '../../src/protocol/names.js';
import type { AmqpClientLike } from '../../src/transport/types.js';
import { code, connectMemory } from '../memory/memory-helpers.js';

function pendingCalls(): PendingCalls {
  return new PendingCalls(
    new BodyPool(),
    new RetryPolicy<PendingCall>({
      isPending: () => false,
      publishLater: () => undefined,
      stopped: true,
    }),
  );
}

const openPublishChannel = (client: AmqpClientLike) => client.channel();

describe('ReplyQueue (replyMode: queue)', () => {
  test('an exclusive server-named queue on a channel of its own; gone with the connection', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient();
    const mode: ReplyMode = new ReplyQueue();
    assert.equal(mode.survivesReconnect, false);
    assert.equal(mode.acksReplies, false);
    const reply = await mode.open(client, openPublishChannel);
    assert.equal(reply.publishes, false);
    assert.equal(broker.queue(reply.replyTo)?.exclusive, true);
    const lost = new RpcError('NOT_FOUND', 'gone');
    const error = mode.channelLostError(lost);
    assert.equal(error.code, 'UNAVAILABLE');
    assert.equal(error.cause, lost);
    await mode.dispose(reply.channel);
    assert.ok(broker.queue(reply.replyTo), 'not deleted: it dies with the connection');
    await client.close();
    assert.equal(broker.queue(reply.replyTo), undefined);
  });
});

describe('DirectReply (replyMode: direct)', () => {
  test('consumes Direct Reply-to on the publishing channel; its error is the calls own', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient();
    const mode: ReplyMode = new DirectReply();
    assert.equal(mode.survivesReconnect, false);
    assert.equal(mode.acksReplies, false);
    let opened = 0;
    const reply = await mode.open(client, (c) => {
      opened++;
      return c.channel();
    });
    assert.equal(opened, 1, 'the publishing channel');
    assert.equal(reply.publishes, true);
    assert.equal(reply.replyTo, DIRECT_REPLY_QUEUE);
    const lost = new RpcError('PERMISSION_DENIED', 'refused');
    assert.equal(mode.channelLostError(lost), lost);
    await client.close();
  });
});

describe('ExpiringReplyQueue (replyMode: expiring-queue)', () => {
  test('a named durable queue with x-expires, acked replies, deleted on dispose', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient();
    const mode = new ExpiringReplyQueue('guest', 30_000, SILENT_LOGGER, pendingCalls());
    assert.equal(mode.survivesReconnect, true);
    assert.equal(mode.acksReplies, true);
    const reply = await mode.open(client);
    assert.equal(reply.publishes, false);
    assert.equal(reply.replyTo, mode.name);
    assert.match(reply.replyTo, /^rpc\.reply\.guest\.[0-9a-f-]{36}$/);
    const info = broker.queue(reply.replyTo);
    assert.ok(info);
    assert.equal(info.durable, true);
    assert.equal(info.exclusive, false);
    assert.equal(info.arguments['x-expires'], 30_000);
    // Opened again (a reconnect): the same queue.
    const again = await mode.open(client);
    assert.equal(again.replyTo, reply.replyTo);
    await mode.dispose(reply.channel);
    assert.equal(broker.queue(reply.replyTo), undefined);
    await client.close();
  });

  test('found taken by another consumer: replaced under a new name, its waiting calls fail', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient();
    const pending = pendingCalls();
    const mode = new ExpiringReplyQueue(undefined, 30_000, SILENT_LOGGER, pending);
    const first = await mode.open(client);
    const thief = await (await broker.connectClient()).channel();
    await thief.basicConsume(first.replyTo, { noAck: true }, () => undefined);
    const outcomes: unknown[] = [];
    const call = new PendingCall(
      'id-1',
      'q',
      new Uint8Array(),
      { replyTo: first.replyTo },
      (value) => outcomes.push(value),
      (error) => outcomes.push(error),
      undefined,
      undefined,
    );
    pending.add(call);
    const second = await mode.open(client);
    assert.notEqual(second.replyTo, first.replyTo);
    assert.match(second.replyTo, /^rpc\.reply\.[0-9a-f-]{36}$/);
    assert.equal(broker.queue(first.replyTo), undefined, 'the taken queue was deleted');
    assert.equal(pending.size, 0);
    assert.ok(outcomes[0] instanceof RpcError && outcomes[0].code === 'UNAVAILABLE');
    await client.close();
  });
});

describe('a connection loss with a call waiting for its reply', () => {
  for (const replyMode of ['queue', 'direct', 'expiring-queue'] as const) {
    const survives = replyMode === 'expiring-queue';
    test(`replyMode ${replyMode}: ${survives ? 'the call keeps waiting and gets its reply' : 'the call fails with UNAVAILABLE'}`, async () => {
      const broker = new MemoryBroker();
      const setupClient = await broker.connectClient();
      const setupChannel = await setupClient.channel();
      await setupChannel.queueDeclare('work', { durable: true, autoDelete: false });
      await setupClient.close();
      const rpc = await connectMemory(broker, { replyMode });
      const call = rpc.call('work', 'x', { timeoutMs: 10_000 });
      // The request waits in its queue, unanswered.
      while (broker.queue('work')?.messageCount !== 1) await new Promise((r) => setTimeout(r, 1));
      broker.disconnectAll();
      if (!survives) {
        await assert.rejects(call, code('UNAVAILABLE'));
        assert.equal(rpc.stats().pending, 0);
        return;
      }
      assert.equal(rpc.stats().pending, 1, 'still waiting');
      // Answered by hand once the broker is back, on a new connection.
      const server = await (await broker.connectClient()).channel();
      await server.basicConsume('work', { noAck: true }, (message) => {
        const { replyTo, correlationId } = message.properties;
        if (replyTo === undefined || correlationId === undefined) return;
        void server.basicPublish('', replyTo, new TextEncoder().encode('"answered"'), {
          correlationId,
          contentType: 'application/json',
        });
      });
      assert.equal(await call, 'answered');
      assert.equal(rpc.stats().reconnects, 1);
    });
  }
});
