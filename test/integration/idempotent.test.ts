/**
 * Idempotent calls and server-side deduplication against the real broker: duplicates of a
 * request (same message_id) run the handler once and all get its reply; idempotent calls
 * are retried while nothing serves their queue, within their deadline.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import {
  defineService,
  RpcError,
  type CallInterceptor,
  type HandlerContext,
} from '../../src/index.js';
import {
  AMQP_URL,
  assertCode,
  collectReplies,
  connectForTest,
  deferred,
  eventually,
  failOnUnhandled,
  uniqueQueue,
} from '../helpers.js';

failOnUnhandled();

let raw: AMQPClient;
let rawChannel: AMQPChannel;
before(async () => {
  raw = new AMQPClient(AMQP_URL);
  await raw.connect();
  rawChannel = await raw.channel();
});
after(() => raw.close());

/** A raw caller: publishes requests as any AMQP client would and collects the replies. */
async function rawCaller() {
  const { name, replies, next } = await collectReplies(await raw.channel());
  return {
    replies,
    next,
    publish(queue: string, body: unknown, properties: { messageId?: string; type?: string }) {
      const correlationId = `raw-${String(replies.length)}-${Math.random().toString(16)}`;
      return rawChannel.basicPublish('', queue, JSON.stringify(body), {
        ...properties,
        correlationId,
        replyTo: name,
        contentType: 'application/json',
      });
    },
  };
}

function bodyOf(message: AMQPMessage | undefined): unknown {
  const text = message?.bodyToString();
  return text === undefined || text === null ? undefined : JSON.parse(text);
}

describe('server-side deduplication by message_id', () => {
  test('two concurrent requests with one message_id: the handler runs once, both get its reply', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('dedupe-join');
    const release = deferred();
    const started = deferred();
    let runs = 0;
    const server = await rpc.serve(queue, async (request: { n: number }) => {
      runs++;
      started.resolve();
      await release.promise;
      return { n: request.n, run: runs };
    });
    const caller = await rawCaller();
    await caller.publish(queue, { n: 1 }, { messageId: 'same-id' });
    await started.promise;
    await caller.publish(queue, { n: 2 }, { messageId: 'same-id' });
    // The duplicate is taken (prefetch 10) and waits for the first: two requests active.
    await eventually(() => server.stats.active === 2, 'the duplicate to arrive');
    release.resolve();
    const replies = await caller.next(2);
    assert.equal(runs, 1);
    // Same reply (the first request's), each to its own correlation id.
    assert.deepEqual(replies.map(bodyOf), [
      { n: 1, run: 1 },
      { n: 1, run: 1 },
    ]);
    assert.equal(server.stats.deduplicated, 1);
    assert.equal(server.stats.replied, 2);
  });

  test('a later duplicate gets the cached reply, errors included; other ids and methods run', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('dedupe-later');
    const runs: string[] = [];
    const server = await rpc.serve(queue, (request: string, ctx: HandlerContext) => {
      runs.push(`${ctx.method ?? '-'}:${request}`);
      if (request === 'fail')
        throw new RpcError('NOT_FOUND', 'no such thing', { details: { x: 1 } });
      return `${request}#${runs.length}`;
    });
    const caller = await rawCaller();
    const requests: Array<[string, { messageId?: string; type?: string }]> = [
      ['a', { messageId: 'id-a' }],
      ['a', { messageId: 'id-a' }], // a duplicate
      ['a', { messageId: 'id-a', type: 'other' }], // the same id for another method
      ['a', {}], // no message_id: never deduplicated
      ['fail', { messageId: 'id-f' }],
      ['fail', { messageId: 'id-f' }],
    ];
    // One at a time, so that the order of runs is known.
    for (const [i, [body, properties]] of requests.entries()) {
      await caller.publish(queue, body, properties);
      await caller.next(i + 1);
    }
    const replies = caller.replies;
    assert.deepEqual(replies.slice(0, 4).map(bodyOf), ['a#1', 'a#1', 'a#2', 'a#3']);
    assert.deepEqual(runs, ['-:a', 'other:a', '-:a', '-:fail']);
    for (const reply of replies.slice(4)) {
      const headers = reply.properties.headers ?? {};
      assert.equal(headers['rpc-status'], 'NOT_FOUND');
      assert.equal(headers['rpc-message'], 'no such thing');
      assert.deepEqual(bodyOf(reply), { x: 1 });
    }
    assert.equal(server.stats.deduplicated, 2);
  });

  test('dedupe: false runs every duplicate', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('dedupe-off');
    let runs = 0;
    await rpc.serve(queue, () => ++runs, { dedupe: false });
    const caller = await rawCaller();
    await caller.publish(queue, null, { messageId: 'x' });
    await caller.next(1);
    await caller.publish(queue, null, { messageId: 'x' });
    assert.deepEqual((await caller.next(2)).map(bodyOf), [1, 2]);
  });

  test('an idempotent call sends its correlation id as message_id; a plain call sends none', async (t) => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('message-id');
    await rawChannel.queueDeclare(queue, { autoDelete: false });
    // A raw server: records each request's properties and echoes its message_id.
    const requests: AMQPMessage[] = [];
    const consumer = await rawChannel.basicConsume(queue, { noAck: true }, (message) => {
      requests.push(message);
      const { replyTo, correlationId, messageId } = message.properties;
      void rawChannel.basicPublish('', replyTo ?? '', JSON.stringify(messageId ?? null), {
        correlationId: correlationId ?? '',
      });
    });
    t.after(() => consumer.cancel().then(() => undefined));
    const idempotent = await rpc.call(queue, 'x', { idempotent: true, timeoutMs: 5_000 });
    const plain = await rpc.call(queue, 'y', { timeoutMs: 5_000 });
    assert.equal(requests.length, 2);
    assert.equal(idempotent, requests[0]?.properties.correlationId);
    assert.equal(plain, null);
  });
});

describe('idempotent calls are retried on UNAVAILABLE', () => {
  test('a call to a queue nobody serves yet: retried until a server comes, then resolved', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('retry-later');
    // A plain call fails at once.
    await assert.rejects(rpc.call(queue, 1, { timeoutMs: 10_000 }), (error: unknown) => {
      assertCode(error, 'UNAVAILABLE');
      return true;
    });
    const call = rpc.call(queue, 'late', { timeoutMs: 15_000, idempotent: true });
    await eventually(() => rpc.stats().retries >= 2, 'two retries');
    assert.equal(rpc.stats().pending, 1);
    let runs = 0;
    const server = await rpc.serve(queue, (request: string) => {
      runs++;
      return `served ${request}`;
    });
    assert.equal(await call, 'served late');
    assert.equal(runs, 1);
    assert.equal(server.stats.deduplicated, 0);
  });

  test('with nobody serving, it ends at its deadline: DEADLINE_EXCEEDED caused by the last UNAVAILABLE', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('retry-deadline');
    const started = Date.now();
    const error = await rpc.call(queue, 1, { timeoutMs: 700, idempotent: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    const rpcError = assertCode(error, 'DEADLINE_EXCEEDED');
    assert.ok(rpcError.cause instanceof RpcError);
    assert.equal(rpcError.cause.code, 'UNAVAILABLE');
    assert.ok(took >= 690 && took < 3_000, `ended after ${took} ms`);
    const stats = rpc.stats();
    // 50 ms doubling with jitter: at least 2 retries fit in 700 ms, at most about 6.
    assert.ok(stats.retries >= 2 && stats.retries <= 8, `${stats.retries} retries`);
    assert.equal(stats.pending, 0);
    assert.equal(stats.errors.DEADLINE_EXCEEDED, 1);
    assert.equal(stats.errors.UNAVAILABLE, undefined, 'the retried failures are not counted');
  });

  test('cancelling stops the retries', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('retry-cancel');
    const controller = new AbortController();
    const call = rpc.call(queue, 1, {
      timeoutMs: 20_000,
      idempotent: true,
      signal: controller.signal,
    });
    await eventually(() => rpc.stats().retries >= 1, 'a retry');
    controller.abort();
    await assert.rejects(call, (error: unknown) => {
      assertCode(error, 'CANCELLED');
      return true;
    });
    const retries = rpc.stats().retries;
    // A server appearing now must not see the cancelled call.
    let runs = 0;
    await rpc.serve(queue, () => ++runs);
    assert.equal(await rpc.call(queue, 2), 1);
    assert.equal(rpc.stats().retries, retries);
    assert.equal(runs, 1);
  });

  test('a handler error reply is an answer: never retried, even UNAVAILABLE', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('retry-answer');
    let runs = 0;
    await rpc.serve(queue, () => {
      runs++;
      throw new RpcError('UNAVAILABLE', 'my database is down');
    });
    await assert.rejects(
      rpc.call(queue, 1, { idempotent: true, timeoutMs: 5_000 }),
      (e: unknown) => {
        assertCode(e, 'UNAVAILABLE');
        return true;
      },
    );
    assert.equal(runs, 1);
    assert.equal(rpc.stats().retries, 0);
  });

  test('interceptors see idempotent and pass it on', async () => {
    const seen: boolean[] = [];
    const observe: CallInterceptor = (next) => (request) => {
      seen.push(request.idempotent);
      return next(request);
    };
    const rpc = await connectForTest({ callInterceptors: [observe] });
    const queue = uniqueQueue('retry-intercepted');
    const call = rpc.call(queue, 'x', { timeoutMs: 15_000, idempotent: true });
    await eventually(() => rpc.stats().retries >= 1, 'a retry');
    await rpc.serve(queue, (request) => request);
    assert.equal(await call, 'x');
    await rpc.call(queue, 'y');
    assert.deepEqual(seen, [true, false]);
  });

  test('a contract method marked idempotent is retried by its typed client', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('retry-contract');
    const kv = defineService(
      'kv',
      {
        put: { input: z.object({ key: z.string() }), output: z.boolean(), idempotent: true },
        bump: { input: z.null(), output: z.number() },
      },
      { queue },
    );
    const client = rpc.client(kv);
    const put = client.put({ key: 'a' }, { timeoutMs: 15_000 });
    // Not idempotent: fails at once.
    await assert.rejects(client.bump(null, { timeoutMs: 15_000 }), (e: unknown) => {
      assertCode(e, 'UNAVAILABLE');
      return true;
    });
    // The call's own option wins over the contract's.
    await assert.rejects(client.put({ key: 'b' }, { idempotent: false }), (e: unknown) => {
      assertCode(e, 'UNAVAILABLE');
      return true;
    });
    await eventually(() => rpc.stats().retries >= 1, 'a retry');
    await rpc.serve(kv, { put: () => true, bump: () => 1 });
    assert.equal(await put, true);
    assert.throws(
      () =>
        defineService('bad', {
          // @ts-expect-error run-time check for JavaScript callers
          m: { input: z.null(), output: z.null(), idempotent: 'yes' },
        }),
      { code: 'INVALID_ARGUMENT' },
    );
  });
});
