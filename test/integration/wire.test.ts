// The wire protocol as docs/protocol.md states it, checked with a plain AMQP client on
// the other side (no rabbit-rpc code there).
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, test } from 'node:test';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import { AMQP_URL, connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

let plain: AMQPClient;
let channel: AMQPChannel;

before(async () => {
  plain = new AMQPClient(AMQP_URL);
  await plain.connect();
  channel = await plain.channel();
});
after(() => plain.close());

/** A reply queue of the plain client; resolves the next message that arrives on it. */
async function replyQueue(): Promise<{ name: string; next: () => Promise<AMQPMessage> }> {
  const { name } = await channel.queueDeclare('', { exclusive: true, autoDelete: true });
  const waiting: Array<(message: AMQPMessage) => void> = [];
  await channel.basicConsume(name, { noAck: true }, (message) => waiting.shift()?.(message));
  return { name, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

function text(message: AMQPMessage): string {
  return Buffer.from(message.body ?? new Uint8Array(0)).toString();
}

describe('requests as rabbit-rpc sends them', () => {
  test('body is JSON with content_type, reply_to, correlation_id, expiration and a deadline', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-request');
    await channel.queueDeclare(queue, { autoDelete: true });
    const received = deferred<AMQPMessage>();
    await channel.basicConsume(queue, { noAck: true }, (message) => received.resolve(message));
    const before = Date.now();
    const call = rpc.call(queue, { a: 1 }, { timeoutMs: 1_234, headers: { trace: 'x' } });
    const message = await received.promise;
    const props = message.properties;
    assert.equal(text(message), '{"a":1}');
    assert.equal(props.contentType, 'application/json');
    assert.equal(props.expiration, '1234');
    assert.ok(props.replyTo && props.replyTo.length > 0);
    assert.ok(props.correlationId && props.correlationId.length > 0);
    const deadline = Number(props.headers?.['rpc-deadline']);
    assert.ok(deadline >= before + 1_234 && deadline <= Date.now() + 1_234);
    assert.equal(props.headers?.['trace'], 'x');
    // The login, which the broker checks: the URL's user (guest on the test broker).
    assert.equal(props.userId, decodeURIComponent(new URL(AMQP_URL).username) || 'guest');
    // A plain reply (no headers at all) is a success.
    await channel.basicPublish('', props.replyTo, '"plain"', {
      correlationId: props.correlationId,
    });
    assert.equal(await call, 'plain');
  });

  test('a reply with an rpc-status header is an error with that code, message and details', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-error');
    await channel.queueDeclare(queue, { autoDelete: true });
    await channel.basicConsume(queue, { noAck: true }, (message) => {
      const { replyTo, correlationId } = message.properties;
      if (!replyTo || correlationId === undefined) return;
      const headers = { 'rpc-status': 'PERMISSION_DENIED', 'rpc-message': 'not yours' };
      channel
        .basicPublish('', replyTo, '{"owner":"bob"}', { correlationId, headers })
        .catch(() => undefined);
    });
    await assert.rejects(rpc.call(queue, null), {
      code: 'PERMISSION_DENIED',
      message: 'not yours',
      details: { owner: 'bob' },
    });
  });

  test('an unknown status code from a foreign server becomes UNKNOWN', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-unknown');
    await channel.queueDeclare(queue, { autoDelete: true });
    await channel.basicConsume(queue, { noAck: true }, (message) => {
      const { replyTo, correlationId } = message.properties;
      if (!replyTo || correlationId === undefined) return;
      const headers = { 'rpc-status': 'TEAPOT', 'rpc-message': 'short and stout' };
      channel.basicPublish('', replyTo, '', { correlationId, headers }).catch(() => undefined);
    });
    await assert.rejects(rpc.call(queue, null), { code: 'UNKNOWN' });
  });
});

describe('requests from a plain AMQP client to rabbit-rpc serve', () => {
  test('reply goes to reply_to with the same correlation id and a JSON body', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-serve');
    await rpc.serve(queue, (request) => ({ got: request }));
    const replies = await replyQueue();
    const reply = replies.next();
    await channel.basicPublish('', queue, '"hi"', { replyTo: replies.name, correlationId: 'c-1' });
    const message = await reply;
    assert.equal(message.properties.correlationId, 'c-1');
    assert.equal(message.properties.contentType, 'application/json');
    assert.equal(message.properties.headers?.['rpc-status'], undefined);
    assert.equal(text(message), '{"got":"hi"}');
  });

  test('an undecodable body gets INVALID_ARGUMENT and is acked, never requeued', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-poison');
    let handled = 0;
    const server = await rpc.serve(queue, () => ++handled);
    const replies = await replyQueue();
    for (const [body, contentType] of [
      ['{not json', 'application/json'],
      ['<a/>', 'application/xml'],
    ] as const) {
      const reply = replies.next();
      await channel.basicPublish('', queue, body, {
        replyTo: replies.name,
        correlationId: 'p',
        contentType,
      });
      const message = await reply;
      assert.equal(message.properties.headers?.['rpc-status'], 'INVALID_ARGUMENT');
      assert.equal(typeof message.properties.headers['rpc-message'], 'string');
    }
    await server.close();
    const { messageCount } = await channel.queueDeclare(queue, { passive: true });
    assert.equal(messageCount, 0, 'poison messages are acked, not requeued');
    assert.equal(handled, 0);
  });

  test('no stack trace on the wire by default; exposeErrorStack sends it', async () => {
    const rpc = await connectForTest();
    const quiet = uniqueQueue('wire-nostack');
    const loud = uniqueQueue('wire-stack');
    const fail = () => {
      throw new Error('secret internals');
    };
    await rpc.serve(quiet, fail);
    await rpc.serve(loud, fail, { exposeErrorStack: true });
    const replies = await replyQueue();
    for (const [queue, expectStack] of [
      [quiet, false],
      [loud, true],
    ] as const) {
      const reply = replies.next();
      await channel.basicPublish('', queue, 'null', { replyTo: replies.name, correlationId: 's' });
      const headers = (await reply).properties.headers ?? {};
      assert.equal(headers['rpc-status'], 'UNKNOWN');
      assert.equal(headers['rpc-message'], 'secret internals');
      assert.equal('rpc-stack' in headers, expectStack);
      for (const value of Object.values(headers)) {
        if (!expectStack) assert.ok(!JSON.stringify(value).includes(' at '), 'no stack frames');
      }
    }
  });

  test('a request whose deadline has passed is acked and never started', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-expired');
    const handled: unknown[] = [];
    await rpc.serve(queue, (request) => {
      handled.push(request);
      return 'ok';
    });
    const replies = await replyQueue();
    const headers = { 'rpc-deadline': Date.now() - 1_000 };
    await channel.basicPublish('', queue, '"old"', {
      replyTo: replies.name,
      correlationId: 'o',
      headers,
    });
    const reply = replies.next();
    await channel.basicPublish('', queue, '"new"', { replyTo: replies.name, correlationId: 'n' });
    assert.equal((await reply).properties.correlationId, 'n', 'only the fresh request is answered');
    assert.deepEqual(handled, ['new']);
    assert.equal(rpc.stats().servers[0]?.expired, 1);
  });

  test('user_id reaches ctx.userId; requireUserId refuses a request without one (UNAUTHENTICATED)', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-user');
    const seen: Array<string | undefined> = [];
    await rpc.serve(
      queue,
      (_request, ctx) => {
        seen.push(ctx.userId);
        return 'ok';
      },
      { requireUserId: true },
    );
    const replies = await replyQueue();
    const login = decodeURIComponent(new URL(AMQP_URL).username) || 'guest';
    const refused = replies.next();
    await channel.basicPublish('', queue, 'null', { replyTo: replies.name, correlationId: 'a' });
    const refusal = await refused;
    assert.equal(refusal.properties.headers?.['rpc-status'], 'UNAUTHENTICATED');
    const answered = replies.next();
    await channel.basicPublish('', queue, 'null', {
      replyTo: replies.name,
      correlationId: 'b',
      userId: login,
    });
    assert.equal(text(await answered), '"ok"');
    assert.deepEqual(seen, [login], 'the request without user_id never ran');
  });

  test('a request without reply_to runs and is acked (one-way)', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('wire-oneway');
    const seen = deferred<unknown>();
    const server = await rpc.serve(queue, (request) => seen.resolve(request));
    await channel.basicPublish('', queue, '{"event":1}');
    assert.deepEqual(await seen.promise, { event: 1 });
    await server.close();
    const { messageCount } = await channel.queueDeclare(queue, { passive: true });
    assert.equal(messageCount, 0);
  });
});
