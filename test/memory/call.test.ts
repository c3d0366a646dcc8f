/**
 * The behaviour of test/integration/call.test.ts, through the in-memory broker: the same
 * caller and server code, no RabbitMQ.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { RpcError, type HandlerContext } from '../../src/index.js';
import { deferred, failOnUnhandled } from '../helpers.js';
import {
  Inbox,
  bytes,
  code,
  connectMemory,
  rawChannel,
  setup,
  settleBroker,
} from './memory-helpers.js';

failOnUnhandled();

describe('call and serve over the memory broker', () => {
  test('a round trip: a string in, a string out', async () => {
    const { rpc } = await setup();
    await rpc.serve('hello', (request) => `Processed: ${String(request)}`, { prefetch: 10 });
    assert.equal(await rpc.call('hello', 'Hello World'), 'Processed: Hello World');
  });

  test('JSON values and bytes travel unchanged', async () => {
    const { rpc } = await setup();
    await rpc.serve('echo', (request) => request);
    const value = { n: 1.5, s: 'ü', list: [true, null], nested: { a: [] } };
    assert.deepEqual(await rpc.call('echo', value), value);
    const sent = new Uint8Array([0, 1, 2, 254, 255]);
    const echoed = await rpc.call<Buffer>('echo', sent);
    assert.ok(Buffer.isBuffer(echoed));
    assert.deepEqual([...echoed], [...sent]);
    assert.equal(await rpc.call('echo', undefined), null);
  });

  test('the handler context: deadline, headers, ids, redelivered, queue', async () => {
    const { rpc } = await setup();
    const seen = deferred<HandlerContext>();
    await rpc.serve('ctx', (_request, ctx) => {
      seen.resolve(ctx);
      return ctx.signal.aborted;
    });
    const before = Date.now();
    assert.equal(
      await rpc.call('ctx', 1, { timeoutMs: 4_000, headers: { tenant: 'acme' } }),
      false,
    );
    const ctx = await seen.promise;
    assert.equal(ctx.queue, 'ctx');
    assert.equal(ctx.redelivered, false);
    assert.equal(typeof ctx.correlationId, 'string');
    assert.equal(ctx.messageId, ctx.correlationId);
    assert.equal(ctx.headers['tenant'], 'acme');
    assert.ok(ctx.deadline !== undefined);
    assert.ok(ctx.deadline >= before + 4_000 && ctx.deadline <= Date.now() + 4_000);
    assert.equal(ctx.method, undefined);
  });

  test('many calls in flight, each matched to its own reply', async () => {
    const { rpc } = await setup();
    await rpc.serve('many', (request) => ({ echo: request }), { prefetch: 50 });
    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, i) => rpc.call<{ echo: number }>('many', i)),
    );
    assert.deepEqual(
      replies.map((reply) => reply.echo),
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.equal(rpc.stats().pending, 0);
  });

  test('handlers run concurrently up to the prefetch, and no further', async () => {
    const { broker, rpc } = await setup();
    const prefetch = 3;
    let running = 0;
    let maxRunning = 0;
    const release = deferred();
    const allStarted = deferred();
    await rpc.serve(
      'prefetch',
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (running === prefetch) allStarted.resolve();
        await release.promise;
        running--;
        return 'ok';
      },
      { prefetch },
    );
    const calls = Array.from({ length: 8 }, () => rpc.call('prefetch', null));
    await allStarted.promise;
    await settleBroker();
    assert.equal(rpc.stats().servers[0]?.active, prefetch);
    assert.equal(broker.queue('prefetch')?.unackedCount, prefetch);
    assert.equal(broker.queue('prefetch')?.messageCount, 8 - prefetch);
    release.resolve();
    assert.deepEqual(await Promise.all(calls), Array(8).fill('ok'));
    assert.equal(maxRunning, prefetch);
  });

  for (const replyMode of ['direct', 'expiring-queue'] as const) {
    test(`replyMode '${replyMode}' works the same`, async () => {
      const { broker, rpc } = await setup({ replyMode });
      await rpc.serve('double', (request) => (request as number) * 2);
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, i) => rpc.call('double', i)),
      );
      assert.deepEqual(
        replies,
        Array.from({ length: 50 }, (_, i) => i * 2),
      );
      const others = broker.queueNames().filter((name) => name !== 'double');
      // The reply queue (none with Direct Reply-to), and the server's control queue.
      assert.equal(others.length, (replyMode === 'direct' ? 0 : 1) + 1);
    });
  }

  test('client and server on separate connections', async () => {
    const { broker, rpc: serverSide } = await setup();
    const clientSide = await connectMemory(broker);
    await serverSide.serve('split', (request) => `got ${String(request)}`);
    assert.equal(await clientSide.call('split', 'x'), 'got x');
    assert.equal(broker.connectionCount, 2);
  });
});

describe('errors from handlers reach the caller with a code', () => {
  test('RpcError: its code, message and details', async () => {
    const { rpc } = await setup();
    await rpc.serve('rpcerror', () => {
      throw new RpcError('NOT_FOUND', 'no user 7', { details: { id: 7 } });
    });
    await assert.rejects(rpc.call('rpcerror', 7), (error) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, 'NOT_FOUND');
      assert.equal(error.message, 'no user 7');
      assert.deepEqual(error.details, { id: 7 });
      return true;
    });
  });

  test('any other throw or rejection is UNKNOWN, with no stack on the wire', async () => {
    const { rpc } = await setup();
    await rpc.serve('throw', async (request) => {
      await Promise.resolve();
      if (request === 'string') throw 'plain string'; // eslint-disable-line @typescript-eslint/only-throw-error
      throw new TypeError('boom');
    });
    await assert.rejects(rpc.call('throw', 'error'), (error: RpcError) => {
      assert.equal(error.code, 'UNKNOWN');
      assert.equal(error.message, 'boom');
      assert.ok(!String(error.details).includes('TypeError'));
      return true;
    });
    await assert.rejects(rpc.call('throw', 'string'), code('UNKNOWN'));
  });

  test('payload limits: RESOURCE_EXHAUSTED for a large reply, and for a large request, unhandled', async () => {
    const { broker, rpc: server } = await setup({ maxPayloadBytes: 1_000 });
    const client = await connectMemory(broker);
    let handled = 0;
    await server.serve('bigreply', () => 'x'.repeat(2_000));
    await server.serve('bigrequest', () => ++handled);
    await assert.rejects(client.call('bigreply', null), code('RESOURCE_EXHAUSTED'));
    await assert.rejects(client.call('bigrequest', 'x'.repeat(5_000)), code('RESOURCE_EXHAUSTED'));
    assert.equal(handled, 0);
    await assert.rejects(server.call('bigrequest', 'x'.repeat(2_000)), code('RESOURCE_EXHAUSTED'));
    assert.equal(await server.call('bigrequest', 'small'), 1);
  });
});

describe('deadlines and cancellation', () => {
  test('no reply within timeoutMs: DEADLINE_EXCEEDED on time, nothing left pending', async () => {
    const { rpc } = await setup();
    const release = deferred();
    await rpc.serve('slow', async () => {
      await release.promise;
      return 'late';
    });
    const started = performance.now();
    const calls = Array.from({ length: 20 }, () => rpc.call('slow', null, { timeoutMs: 100 }));
    for (const call of calls) await assert.rejects(call, code('DEADLINE_EXCEEDED'));
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 95 && elapsed < 1_000, `timed out after ${elapsed} ms`);
    assert.equal(rpc.stats().pending, 0);
    release.resolve();
  });

  test('a late reply is dropped and counted, never delivered to a later call', async () => {
    const { rpc } = await setup();
    const timedOut = deferred();
    const handlerDone = deferred();
    let first = true;
    await rpc.serve('late', async () => {
      if (!first) return 'fresh';
      first = false;
      await timedOut.promise;
      handlerDone.resolve();
      return 'stale';
    });
    await assert.rejects(rpc.call('late', null, { timeoutMs: 50 }), code('DEADLINE_EXCEEDED'));
    timedOut.resolve();
    await handlerDone.promise;
    assert.equal(await rpc.call('late', null), 'fresh');
    assert.equal(rpc.stats().unmatchedReplies, 1);
  });

  test("ctx.signal aborts with DEADLINE_EXCEEDED when the caller's deadline passes", async () => {
    const { rpc } = await setup();
    const reason = deferred<unknown>();
    await rpc.serve(
      'ctxdeadline',
      (_request, ctx) => {
        ctx.signal.addEventListener('abort', () => reason.resolve(ctx.signal.reason));
        return new Promise(() => undefined);
      },
      { drainTimeoutMs: 10 },
    );
    await assert.rejects(
      rpc.call('ctxdeadline', null, { timeoutMs: 60 }),
      code('DEADLINE_EXCEEDED'),
    );
    const why = await reason.promise;
    assert.ok(why instanceof RpcError);
    assert.equal(why.code, 'DEADLINE_EXCEEDED');
  });

  test('aborting the signal rejects with CANCELLED at once', async () => {
    const { rpc } = await setup();
    await rpc.serve('cancel', () => new Promise(() => undefined), { drainTimeoutMs: 10 });
    const controller = new AbortController();
    const call = rpc.call('cancel', null, { timeoutMs: 10_000, signal: controller.signal });
    controller.abort();
    await assert.rejects(call, code('CANCELLED'));
    assert.equal(rpc.stats().pending, 0);
    await assert.rejects(
      rpc.call('cancel', null, { signal: AbortSignal.abort() }),
      code('CANCELLED'),
    );
    await assert.rejects(
      rpc.call('cancel', null, { signal: AbortSignal.timeout(20) }),
      code('DEADLINE_EXCEEDED'),
    );
  });

  test('a request nobody consumes in time expires in the queue and never runs', async () => {
    const { broker, rpc } = await setup();
    const placeholder = await rpc.serve('expire', () => 'unused');
    await placeholder.close();
    await assert.rejects(rpc.call('expire', 'stale', { timeoutMs: 30 }), code('DEADLINE_EXCEEDED'));
    // Its expiration counts from the publish, a moment after the call's timer started.
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(broker.queue('expire')?.messageCount, 0, 'expired at the head of the queue');
    const handled: unknown[] = [];
    const server = await rpc.serve('expire', (request) => {
      handled.push(request);
      return 'ok';
    });
    assert.equal(await rpc.call('expire', 'fresh'), 'ok');
    assert.deepEqual(handled, ['fresh']);
    assert.equal(server.stats.expired, 0, 'the broker dropped it, the server never saw it');
  });

  test('a request whose deadline passed is acked without running the handler', async () => {
    const { broker, rpc } = await setup();
    let handled = 0;
    const server = await rpc.serve('stale', () => ++handled);
    // No expiration, only a deadline in the past: the server drops it itself.
    broker.publish('stale', '"old"', {
      contentType: 'application/json',
      headers: { 'rpc-deadline': Date.now() - 1_000 },
    });
    await settleBroker();
    await settleBroker();
    assert.equal(server.stats.expired, 1);
    assert.equal(handled, 0);
    assert.equal(broker.queue('stale')?.unackedCount, 0);
  });
});

describe('requests that cannot be delivered', () => {
  test('no such queue: UNAVAILABLE fast (basic.return), not at the timeout', async () => {
    const { rpc } = await setup();
    const started = performance.now();
    await assert.rejects(rpc.call('missing', null, { timeoutMs: 10_000 }), code('UNAVAILABLE'));
    assert.ok(performance.now() - started < 500);
    assert.equal(rpc.stats().pending, 0);
  });

  test('an undecodable request gets INVALID_ARGUMENT and is acked', async () => {
    const { broker, rpc } = await setup();
    let handled = 0;
    await rpc.serve('strict', () => ++handled);
    const channel = await rawChannel(broker);
    const { name: replyQueue } = await channel.queueDeclare('', { exclusive: true });
    const inbox = new Inbox();
    await channel.basicConsume(replyQueue, { noAck: true }, inbox.push);
    await channel.basicPublish('', 'strict', bytes('{not json'), {
      contentType: 'application/json',
      correlationId: 'c1',
      replyTo: replyQueue,
    });
    const reply = await inbox.next();
    assert.equal(reply.properties.correlationId, 'c1');
    assert.equal(reply.properties.headers?.['rpc-status'], 'INVALID_ARGUMENT');
    assert.equal(handled, 0);
    await settleBroker();
    assert.equal(broker.queue('strict')?.messageCount, 0);
    assert.equal(broker.queue('strict')?.unackedCount, 0, 'acked, not requeued');
  });

  test('bad call arguments and unencodable values are INVALID_ARGUMENT', async () => {
    const { rpc } = await setup();
    await assert.rejects(rpc.call('q', { n: 1n }), code('INVALID_ARGUMENT'));
    await assert.rejects(rpc.call('', null), code('INVALID_ARGUMENT'));
    await assert.rejects(rpc.call('q', null, { timeoutMs: 0 }), code('INVALID_ARGUMENT'));
    await assert.rejects(
      rpc.serve('q', () => null, { prefetch: -1 }),
      code('INVALID_ARGUMENT'),
    );
  });
});
