/**
 * Messages no well-behaved client sends, through a real RabbitMQ to a real server and
 * caller: built frame by frame (test/fuzz/raw-amqp.ts), since the AMQP library's encoder
 * cannot produce them. Each must be set aside (rejected without requeue, counted) while the
 * process lives and other messages keep flowing. A library must never crash its host.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, test } from 'node:test';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import { CONTROL_EXCHANGE } from '../../src/protocol/names.js';
import {
  AMQP_URL,
  connectForTest,
  deferred,
  eventually,
  failOnUnhandled,
  uniqueQueue,
} from '../helpers.js';
import {
  longString,
  nestedTableContent,
  properties,
  publishRaw,
  shortString,
  table,
} from './raw-amqp.js';

failOnUnhandled();

/** ~21 KB of header: the depth that made the AMQP library overflow the stack (issue 13). */
const HOSTILE_DEPTH = 3_000;
const deepHeaders = (): Buffer => table(nestedTableContent(HOSTILE_DEPTH));

let raw: AMQPClient;
let channel: AMQPChannel;

before(async () => {
  // frameMax: the hostile header does not fit the library's default 8 KiB frames.
  raw = new AMQPClient(`${AMQP_URL}${AMQP_URL.includes('?') ? '&' : '?'}frameMax=131072`);
  await raw.connect();
  channel = await raw.channel();
});
after(() => raw.close());

/** The number of messages ready in `queue`. */
async function depth(queue: string): Promise<number> {
  const { messageCount } = await channel.queueDeclare(queue, { passive: true });
  return messageCount;
}

describe('hostile messages through RabbitMQ', () => {
  test('a request with a header nested 3,000 levels is rejected unrequeued and counted; the server serves on', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('deep-request');
    const server = await rpc.serve(queue, (request) => request, { prefetch: 1 });
    publishRaw(
      raw,
      channel,
      '',
      queue,
      properties({
        headers: deepHeaders(),
        correlationId: shortString('x'),
        replyTo: shortString(queue),
      }),
      Buffer.from('"poison"'),
    );
    await eventually(() => server.stats.undecodable === 1, 'the request to be set aside');
    // With prefetch 1 the next call is served only if the poison request was settled.
    assert.equal(await rpc.call(queue, 'after', { timeoutMs: 5_000 }), 'after');
    assert.equal(await depth(queue), 0, 'the poison request is not requeued');
    assert.equal(server.stats.replied, 1);
  });

  test('with a dead-letter exchange, the undecodable request is dead-lettered', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('deep-dlx');
    const dead = uniqueQueue('deep-dlx-dead');
    await channel.queueDeclare(dead, { autoDelete: false });
    const server = await rpc.serve(queue, (request) => request, {
      deadLetterExchange: '',
      deadLetterRoutingKey: dead,
    });
    publishRaw(raw, channel, '', queue, properties({ headers: deepHeaders() }), Buffer.from('1'));
    await eventually(() => server.stats.undecodable === 1, 'the request to be set aside');
    const letters: AMQPMessage[] = [];
    await eventually(async () => {
      const letter = await channel.basicGet(dead);
      if (letter) letters.push(letter);
      return letters.length > 0;
    }, 'a dead letter');
    const [letter] = letters;
    assert.ok(letter);
    assert.equal(letter.bodyToString(), '1');
    // The dead letter is still the hostile message: this (patched) client sets it aside too.
    assert.ok(letter.decodeError instanceof RangeError);
  });

  test('a hostile reply is dropped; the call gets its real reply', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('deep-reply');
    await channel.queueDeclare(queue, { autoDelete: false });
    const request = deferred<AMQPMessage>();
    await channel.basicConsume(queue, { noAck: true }, (message) => request.resolve(message));
    const call = rpc.call(queue, 'ping', { timeoutMs: 10_000 });
    const { replyTo, correlationId } = (await request.promise).properties;
    assert.ok(replyTo !== undefined && correlationId !== undefined);
    const hostile = properties({
      headers: deepHeaders(),
      correlationId: shortString(correlationId),
    });
    publishRaw(raw, channel, '', replyTo, hostile, Buffer.from('"forged"'));
    await eventually(() => rpc.stats().unmatchedReplies === 1, 'the hostile reply to be dropped');
    publishRaw(
      raw,
      channel,
      '',
      replyTo,
      properties({ correlationId: shortString(correlationId) }),
      Buffer.from('"pong"'),
    );
    assert.equal(await call, 'pong');
  });

  test('hostile control messages (deep, and a credit no number can be made of) leave servers serving', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('deep-control');
    await rpc.serve(queue, (request) => request);
    const entry = (key: string, type: string, value: Buffer): Buffer =>
      Buffer.concat([shortString(key), Buffer.from(type), value]);
    const int = (n: number): Buffer => {
      const bytes = Buffer.alloc(4);
      bytes.writeInt32BE(n, 0);
      return bytes;
    };
    // `rpc-credit` as a table whose valueOf and toString are numbers: Number() throws on it.
    const credit = table(
      Buffer.concat([
        entry('rpc-control', 'S', longString(Buffer.from('credit'))),
        entry(
          'rpc-credit',
          'F',
          table(Buffer.concat([entry('valueOf', 'I', int(1)), entry('toString', 'I', int(1))])),
        ),
      ]),
    );
    for (const headers of [deepHeaders(), credit]) {
      publishRaw(
        raw,
        channel,
        CONTROL_EXCHANGE,
        queue,
        properties({ headers, correlationId: shortString('x') }),
        Buffer.alloc(0),
      );
    }
    // Both went through the control queue before this broadcast (one queue, in order).
    const answers = await rpc.broadcast(queue, 'still here', { timeoutMs: 5_000, max: 1 });
    assert.deepEqual(
      answers.map((answer) => (answer.ok ? answer.reply : answer.error.code)),
      ['still here'],
    );
    assert.equal(await rpc.call(queue, 'and here', { timeoutMs: 5_000 }), 'and here');
  });
});
