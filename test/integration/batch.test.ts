// The opt-in batch mode (issue 5, stretch) on the real broker: calls made in the same tick
// share one AMQP message, their replies come back together, and every call keeps its own
// outcome, deadline and cancellation.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { AMQPClient, type AMQPMessage } from '@cloudamqp/amqp-client';
import { connect, RpcError } from '../../src/index.js';
import {
  AMQP_URL,
  codeOf,
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
} from '../helpers.js';

failOnUnhandled();

const BATCH = 'application/vnd.rabbit-rpc.batch+json';

/** A plain AMQP consumer on `queue` that hands over each message it gets, unacked. */
async function rawConsumer(queue: string) {
  const client = new AMQPClient(AMQP_URL);
  await client.connect();
  const channel = await client.channel();
  await channel.queueDeclare(queue, { durable: true, autoDelete: false });
  const messages: AMQPMessage[] = [];
  let arrived = deferred();
  await channel.basicConsume(queue, { noAck: true }, (message) => {
    messages.push(message);
    arrived.resolve();
  });
  return {
    channel,
    messages,
    async next(): Promise<AMQPMessage> {
      while (messages.length === 0) {
        await arrived.promise;
        arrived = deferred();
      }
      return messages.shift() as AMQPMessage;
    },
    close: () => client.close(),
  };
}

describe('batch: true', () => {
  test('calls of one tick travel in one message; each gets its own reply', async () => {
    const server = await connectForTest();
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.echo');
    await server.serve(queue, (request, ctx) => ({ request, id: ctx.correlationId }));
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) => caller.call<{ request: number; id: string }>(queue, i)),
    );
    assert.deepEqual(
      replies.map((reply) => reply.request),
      Array.from({ length: 50 }, (_, i) => i),
    );
    // Every call ran as a request of its own, under its own correlation id.
    assert.equal(new Set(replies.map((reply) => reply.id)).size, 50);
    assert.equal(server.stats().servers[0]?.replied, 50);
    assert.equal(caller.stats().pending, 0);
  });

  test('on the wire: one message of entries [id, deadline, method, headers, payload]', async () => {
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.wire');
    const consumer = await rawConsumer(queue);
    try {
      const calls = [1, 2, 3].map((n) =>
        caller.call(queue, { n }, { headers: { 'x-n': n }, timeoutMs: 10_000 }),
      );
      const message = await consumer.next();
      assert.equal(message.properties.contentType, BATCH);
      const entries = JSON.parse(message.bodyToString() ?? '') as unknown[][];
      assert.equal(entries.length, 3);
      for (const [i, entry] of entries.entries()) {
        const [id, deadline, method, headers, payload] = entry;
        assert.equal(typeof id, 'string');
        assert.ok(typeof deadline === 'number' && deadline > Date.now());
        assert.equal(method, null);
        assert.deepEqual(headers, { 'x-n': i + 1 });
        assert.deepEqual(payload, { n: i + 1 });
      }
      // A reply in the batch format answers them: one success, one error, one text.
      const ids = entries.map((entry) => entry[0] as string);
      const reply = JSON.stringify([
        [ids[0], null, null, null, { ok: 1 }],
        [ids[1], 'NOT_FOUND', 'no such n', null, { n: 2 }],
        [ids[2], null, null, 'text/plain', 'three'],
      ]);
      await consumer.channel.basicPublish('', message.properties.replyTo ?? '', reply, {
        contentType: BATCH,
        correlationId: message.properties.correlationId ?? '',
      });
      const outcomes = await Promise.allSettled(calls);
      assert.deepEqual(outcomes[0], { status: 'fulfilled', value: { ok: 1 } });
      assert.ok(outcomes[1]?.status === 'rejected');
      const error = outcomes[1].reason as RpcError;
      assert.equal(error.code, 'NOT_FOUND');
      assert.deepEqual(error.details, { n: 2 });
      assert.deepEqual(outcomes[2], { status: 'fulfilled', value: 'three' });
    } finally {
      await consumer.close();
    }
  });

  test('a call alone in its tick, a call with bytes and a large one go as usual', async () => {
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.plain');
    const consumer = await rawConsumer(queue);
    try {
      void caller.call(queue, 'alone', { timeoutMs: 500 }).catch(() => undefined);
      const alone = await consumer.next();
      assert.equal(alone.properties.contentType, 'application/json');
      assert.equal(alone.bodyToString(), '"alone"');
      void caller.call(queue, 'json', { timeoutMs: 500 }).catch(() => undefined);
      void caller.call(queue, Buffer.from([1, 2]), { timeoutMs: 500 }).catch(() => undefined);
      const types = [await consumer.next(), await consumer.next()].map(
        (message) => message.properties.contentType,
      );
      assert.deepEqual(types.sort(), ['application/json', 'application/octet-stream']);
      // A request over 16 KiB goes on its own, leaving the small one alone too.
      void caller.call(queue, 'x'.repeat(20_000), { timeoutMs: 500 }).catch(() => undefined);
      void caller.call(queue, 'small', { timeoutMs: 500 }).catch(() => undefined);
      const sizes = [await consumer.next(), await consumer.next()].map((message) => {
        assert.equal(message.properties.contentType, 'application/json');
        return message.bodySize;
      });
      assert.deepEqual(
        sizes.sort((a, b) => a - b),
        [7, 20_002],
      );
    } finally {
      await consumer.close();
    }
  });

  test('errors, binary and text replies keep their codes, details and types', async () => {
    const server = await connectForTest();
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.kinds');
    await server.serve(queue, (request) => {
      if (request === 'fail') throw new RpcError('PERMISSION_DENIED', 'no', { details: [1] });
      if (request === 'bytes') return new Uint8Array([0, 255]);
      if (request === 'crash') throw new Error('boom');
      return request;
    });
    const outcomes = await Promise.allSettled(
      ['fail', 'bytes', 'crash', 'fine', null].map((request) => caller.call(queue, request)),
    );
    const [fail, bytes, crash, fine, nothing] = outcomes;
    assert.ok(fail?.status === 'rejected' && fail.reason instanceof RpcError);
    assert.equal(fail.reason.code, 'PERMISSION_DENIED');
    assert.deepEqual(fail.reason.details, [1]);
    assert.ok(bytes?.status === 'fulfilled' && Buffer.isBuffer(bytes.value));
    assert.deepEqual([...bytes.value], [0, 255]);
    assert.ok(crash?.status === 'rejected' && crash.reason instanceof RpcError);
    assert.equal(crash.reason.code, 'UNKNOWN');
    assert.deepEqual(fine, { status: 'fulfilled', value: 'fine' });
    assert.deepEqual(nothing, { status: 'fulfilled', value: null });
  });

  test('a slow call does not hold back the others of its batch', async () => {
    const server = await connectForTest();
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.slow');
    const release = deferred();
    await server.serve(queue, async (request) => {
      if (request === 'slow') await release.promise;
      return request;
    });
    const slow = caller.call(queue, 'slow');
    const fast = await Promise.all([1, 2, 3].map((n) => caller.call(queue, n)));
    assert.deepEqual(fast, [1, 2, 3]);
    release.resolve();
    assert.equal(await slow, 'slow');
  });

  test("a batch over the server's maxPayloadBytes: every call is RESOURCE_EXHAUSTED", async () => {
    const server = await connectForTest({ maxPayloadBytes: 2_000 });
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.big');
    let ran = 0;
    await server.serve(queue, () => ++ran);
    // Each call is under the limit; the three together are not.
    const codes = await Promise.all(
      [1, 2, 3].map((n) => codeOf(caller.call(queue, `${n}${'x'.repeat(900)}`))),
    );
    assert.deepEqual(codes, ['RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED']);
    assert.equal(ran, 0);
  });

  test('no such queue: every call of the batch is UNAVAILABLE at once', async () => {
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.none');
    const started = performance.now();
    const codes = await Promise.all([1, 2, 3].map((n) => codeOf(caller.call(queue, n))));
    assert.deepEqual(codes, ['UNAVAILABLE', 'UNAVAILABLE', 'UNAVAILABLE']);
    assert.ok(performance.now() - started < 5_000);
    assert.equal(caller.stats().pending, 0);
  });

  test("a batched call's cancel aborts its own handler only", async () => {
    const server = await connectForTest();
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.cancel');
    const signals = new Map<unknown, AbortSignal>();
    const allStarted = deferred();
    await server.serve(queue, async (request, ctx) => {
      signals.set(request, ctx.signal);
      if (signals.size === 2) allStarted.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      return request;
    });
    const abort = new AbortController();
    const cancelled = caller.call(queue, 'a', { signal: abort.signal });
    const other = caller.call(queue, 'b', { timeoutMs: 600 });
    await allStarted.promise;
    abort.abort();
    assert.equal(await codeOf(cancelled), 'CANCELLED');
    const aborted = signals.get('a');
    if (aborted && !aborted.aborted) await new Promise((r) => aborted.addEventListener('abort', r));
    assert.ok((aborted?.reason as RpcError).code === 'CANCELLED');
    assert.equal(signals.get('b')?.aborted, false);
    assert.equal(await codeOf(other), 'DEADLINE_EXCEEDED');
  });

  test('a server that does not read batches: every call gets its error', async () => {
    const caller = await connectForTest({ batch: true });
    const queue = uniqueQueue('batch.old');
    const consumer = await rawConsumer(queue);
    try {
      const calls = [1, 2].map((n) => codeOf(caller.call(queue, n, { timeoutMs: 10_000 })));
      const message = await consumer.next();
      // What a server that does not know the content type answers: one error reply.
      await consumer.channel.basicPublish('', message.properties.replyTo ?? '', '', {
        correlationId: message.properties.correlationId ?? '',
        headers: { 'rpc-status': 'INVALID_ARGUMENT', 'rpc-message': 'unsupported content type' },
      });
      assert.deepEqual(await Promise.all(calls), ['INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
    } finally {
      await consumer.close();
    }
  });

  test('bad batch options are INVALID_ARGUMENT', async () => {
    for (const batch of [{ maxCalls: 1 }, { maxBytes: 10 }, 'yes']) {
      await assert.rejects(
        connect({ url: AMQP_URL, batch: batch as never }),
        (error: RpcError) => error.code === 'INVALID_ARGUMENT',
      );
    }
  });
});
