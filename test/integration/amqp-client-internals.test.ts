// The AMQP library's internals we rely on (D12), on a real connection: openAmqp makes the
// client encode every publish into one scratch buffer (nothing pooled per publish), and
// batchWritesThisTick corks its real socket for one tick.
// test/unit/amqp-client-internals.test.ts checks the same shapes without a broker.
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { test } from 'node:test';
import { openAmqp } from '../../src/transport/amqp-client.js';
import { resolveConnectOptions } from '../../src/options/connect.js';
import { batchWritesThisTick } from '../../src/transport/amqp-client.js';
import { eventually, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

test('a real client: its socket is corked for one tick, no buffer is pooled per publish', async () => {
  const client = await openAmqp(
    process.env['AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672',
    resolveConnectOptions(process.env['AMQP_URL']),
  );
  try {
    const channel = await client.channel();
    const queue = uniqueQueue('amqp-internals');
    await channel.queueDeclare(queue, { exclusive: true, autoDelete: true });
    assert.equal(channel.connection, client);
    assert.ok(client.socket instanceof Socket, 'AMQPClient#socket is a net.Socket');
    const socket = client.socket;

    batchWritesThisTick(channel.connection);
    assert.equal(socket.writableCorked, 1);
    // 600 publishes in one tick: each holds only a copy of its frames until they are written.
    const body = new Uint8Array(64);
    await Promise.all(
      Array.from({ length: 600 }, () => channel.basicPublish('', queue, body, {}, false)),
    );
    assert.equal(socket.writableCorked, 0, 'uncorked after the tick');
    const pool = (client as unknown as { bufferPool: Array<{ byteLength: number }> }).bufferPool;
    assert.equal(pool.length, 0, 'no buffer kept per publish');
    // Frames spoiled by a reused scratch would have closed the connection; count them in.
    await eventually(
      async () => (await channel.queueDeclare(queue, { passive: true })).messageCount === 600,
      'every publish to arrive whole',
    );
    await channel.queueDelete(queue);
  } finally {
    await client.close();
  }
});
