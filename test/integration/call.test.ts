import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { RpcError, type HandlerContext } from '../../src/index.js';
import { connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

describe('call and serve', () => {
  test('the seed round trip: a string in, a string out', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('hello');
    await rpc.serve(queue, (request) => `Processed: ${String(request)}`, { prefetch: 10 });
    assert.equal(
      await rpc.call(queue, 'Hello World', { timeoutMs: 5_000 }),
      'Processed: Hello World',
    );
  });

  test('JSON values and bytes travel unchanged', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('echo');
    await rpc.serve(queue, (request) => request);
    const value = { n: 1.5, s: 'ü', list: [true, null], nested: { a: [] } };
    assert.deepEqual(await rpc.call(queue, value), value);
    const bytes = new Uint8Array([0, 1, 2, 254, 255]);
    const echoed = await rpc.call<Buffer>(queue, bytes);
    assert.ok(Buffer.isBuffer(echoed));
    assert.deepEqual([...echoed], [...bytes]);
    assert.equal(await rpc.call(queue, undefined), null);
  });

  test('the handler context: deadline, headers, correlation id, redelivered, queue', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('ctx');
    const seen = deferred<HandlerContext>();
    await rpc.serve(queue, (_request, ctx) => {
      seen.resolve(ctx);
      return ctx.signal.aborted;
    });
    const before = Date.now();
    const aborted = await rpc.call(queue, 1, { timeoutMs: 4_000, headers: { tenant: 'acme' } });
    const ctx = await seen.promise;
    assert.equal(aborted, false);
    assert.equal(ctx.queue, queue);
    assert.equal(ctx.redelivered, false);
    assert.equal(typeof ctx.correlationId, 'string');
    assert.equal(ctx.headers['tenant'], 'acme');
    assert.ok(ctx.deadline !== undefined);
    assert.ok(ctx.deadline >= before + 4_000 && ctx.deadline <= Date.now() + 4_000);
    assert.equal(ctx.method, undefined);
  });

  test('many calls in flight on one connection, each matched to its own reply', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('many');
    await rpc.serve(queue, (request) => ({ echo: request }), { prefetch: 50 });
    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, i) => rpc.call<{ echo: number }>(queue, i)),
    );
    assert.deepEqual(
      replies.map((reply) => reply.echo),
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.equal(rpc.stats().pending, 0);
  });

  test('large requests in reused buffers arrive intact, call after call', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('large');
    await rpc.serve(queue, (request: { i: number; text: string }) => ({
      i: request.i,
      ok: request.text === `${request.i}:`.padEnd(40_000, String(request.i % 10)),
    }));
    for (let round = 0; round < 3; round++) {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, k) => {
          const i = round * 20 + k;
          const text = `${i}:`.padEnd(40_000, String(i % 10));
          return rpc.call<{ i: number; ok: boolean }>(queue, { i, text });
        }),
      );
      assert.ok(
        replies.every((reply, k) => reply.i === round * 20 + k && reply.ok),
        `round ${round}: every request reached the server as it was sent`,
      );
    }
  });

  test('handlers run concurrently up to the prefetch, and no further', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('prefetch');
    const prefetch = 3;
    let running = 0;
    let maxRunning = 0;
    const release = deferred();
    const allStarted = deferred();
    await rpc.serve(
      queue,
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
    const calls = Array.from({ length: 8 }, () => rpc.call(queue, null));
    await allStarted.promise;
    assert.equal(rpc.stats().servers[0]?.active, prefetch);
    release.resolve();
    assert.deepEqual(await Promise.all(calls), Array(8).fill('ok'));
    assert.equal(maxRunning, prefetch);
  });

  test('Direct Reply-to mode works the same', async () => {
    const rpc = await connectForTest({ replyMode: 'direct' });
    const queue = uniqueQueue('direct');
    await rpc.serve(queue, (request) => (request as number) * 2);
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => rpc.call(queue, i)));
    assert.deepEqual(
      replies,
      Array.from({ length: 50 }, (_, i) => i * 2),
    );
  });

  test('client and server on separate connections', async () => {
    const serverSide = await connectForTest();
    const clientSide = await connectForTest();
    const queue = uniqueQueue('split');
    await serverSide.serve(queue, (request) => `got ${String(request)}`);
    assert.equal(await clientSide.call(queue, 'x'), 'got x');
  });
});

describe('errors from handlers reach the caller with a code', () => {
  test('RpcError: its code, message and details', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('rpcerror');
    await rpc.serve(queue, () => {
      throw new RpcError('NOT_FOUND', 'no user 7', { details: { id: 7 } });
    });
    await assert.rejects(rpc.call(queue, 7), (error) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, 'NOT_FOUND');
      assert.equal(error.message, 'no user 7');
      assert.deepEqual(error.details, { id: 7 });
      return true;
    });
  });

  test('any other throw or rejection is UNKNOWN, promptly, with no stack on the wire', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('throw');
    await rpc.serve(queue, async (request) => {
      await Promise.resolve();
      if (request === 'string') throw 'plain string'; // eslint-disable-line @typescript-eslint/only-throw-error
      throw new TypeError('boom');
    });
    const started = performance.now();
    await assert.rejects(rpc.call(queue, 'error', { timeoutMs: 10_000 }), (error: RpcError) => {
      assert.equal(error.code, 'UNKNOWN');
      assert.equal(error.message, 'boom');
      assert.ok(!String(error.details).includes('TypeError'));
      return true;
    });
    assert.ok(performance.now() - started < 2_000, 'rejects promptly, not at the timeout');
    await assert.rejects(rpc.call(queue, 'string'), { code: 'UNKNOWN' });
  });

  test('a reply over maxPayloadBytes becomes RESOURCE_EXHAUSTED', async () => {
    const server = await connectForTest({ maxPayloadBytes: 1_000 });
    const client = await connectForTest();
    const queue = uniqueQueue('bigreply');
    await server.serve(queue, () => 'x'.repeat(2_000));
    await assert.rejects(client.call(queue, null), { code: 'RESOURCE_EXHAUSTED' });
  });

  test("a request over the server's maxPayloadBytes gets RESOURCE_EXHAUSTED, unhandled", async () => {
    const server = await connectForTest({ maxPayloadBytes: 1_000 });
    const client = await connectForTest();
    const queue = uniqueQueue('bigrequest');
    let handled = 0;
    await server.serve(queue, () => ++handled);
    await assert.rejects(client.call(queue, 'x'.repeat(5_000)), { code: 'RESOURCE_EXHAUSTED' });
    assert.equal(handled, 0);
  });
});

describe('deadlines and cancellation', () => {
  test('no reply within timeoutMs: DEADLINE_EXCEEDED on time, nothing left pending', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('slow');
    const release = deferred();
    await rpc.serve(queue, async () => {
      await release.promise;
      return 'late';
    });
    const started = performance.now();
    const calls = Array.from({ length: 20 }, () => rpc.call(queue, null, { timeoutMs: 300 }));
    for (const call of calls) await assert.rejects(call, { code: 'DEADLINE_EXCEEDED' });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 290 && elapsed < 1_500, `timed out after ${elapsed} ms`);
    assert.equal(rpc.stats().pending, 0);
    release.resolve();
  });

  test('a late reply is dropped and counted, never delivered to a later call', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('late');
    const handlerDone = deferred();
    let first = true;
    await rpc.serve(queue, async () => {
      if (!first) return 'fresh';
      first = false;
      await new Promise((resolve) => setTimeout(resolve, 300));
      handlerDone.resolve();
      return 'stale';
    });
    await assert.rejects(rpc.call(queue, null, { timeoutMs: 100 }), { code: 'DEADLINE_EXCEEDED' });
    await handlerDone.promise;
    assert.equal(await rpc.call(queue, null), 'fresh');
    assert.equal(rpc.stats().unmatchedReplies, 1);
  });

  test("ctx.signal aborts with DEADLINE_EXCEEDED when the caller's deadline passes", async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('ctxdeadline');
    const reason = deferred<unknown>();
    await rpc.serve(
      queue,
      (_request, ctx) => {
        ctx.signal.addEventListener('abort', () => reason.resolve(ctx.signal.reason));
        return new Promise(() => undefined);
      },
      { drainTimeoutMs: 50 },
    );
    await assert.rejects(rpc.call(queue, null, { timeoutMs: 200 }), { code: 'DEADLINE_EXCEEDED' });
    const why = await reason.promise;
    assert.ok(why instanceof RpcError);
    assert.equal(why.code, 'DEADLINE_EXCEEDED');
  });

  test('aborting the signal rejects with CANCELLED at once', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cancel');
    await rpc.serve(queue, () => new Promise(() => undefined), { drainTimeoutMs: 50 });
    const controller = new AbortController();
    const call = rpc.call(queue, null, { timeoutMs: 10_000, signal: controller.signal });
    const started = performance.now();
    controller.abort();
    await assert.rejects(call, { code: 'CANCELLED' });
    assert.ok(performance.now() - started < 100);
    assert.equal(rpc.stats().pending, 0);
  });

  test('an already aborted signal rejects CANCELLED without publishing', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('preaborted');
    let handled = 0;
    await rpc.serve(queue, () => ++handled);
    await assert.rejects(rpc.call(queue, null, { signal: AbortSignal.abort() }), {
      code: 'CANCELLED',
    });
    assert.equal(await rpc.call(queue, null), 1, 'only the second call reached the server');
  });

  test('AbortSignal.timeout() counts as a deadline', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('signaltimeout');
    await rpc.serve(queue, () => new Promise(() => undefined), { drainTimeoutMs: 50 });
    await assert.rejects(rpc.call(queue, null, { signal: AbortSignal.timeout(50) }), {
      code: 'DEADLINE_EXCEEDED',
    });
  });

  test('a request nobody consumes in time expires in the queue and never runs', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('expire');
    // Declare the queue with a server that is closed at once, so it exists with no consumer.
    const placeholder = await rpc.serve(queue, () => 'unused');
    await placeholder.close();
    await assert.rejects(rpc.call(queue, 'stale', { timeoutMs: 100 }), {
      code: 'DEADLINE_EXCEEDED',
    });
    const handled: unknown[] = [];
    await rpc.serve(queue, (request) => {
      handled.push(request);
      return 'ok';
    });
    assert.equal(await rpc.call(queue, 'fresh'), 'ok');
    assert.deepEqual(handled, ['fresh']);
  });
});

describe('requests that cannot be delivered', () => {
  test('no such queue: UNAVAILABLE fast (basic.return), not at the timeout', async () => {
    const rpc = await connectForTest();
    const started = performance.now();
    await assert.rejects(rpc.call(uniqueQueue('missing'), null, { timeoutMs: 10_000 }), {
      code: 'UNAVAILABLE',
    });
    assert.ok(performance.now() - started < 2_000);
    assert.equal(rpc.stats().pending, 0);
  });

  test('a request over maxPayloadBytes is RESOURCE_EXHAUSTED and is never published', async () => {
    const rpc = await connectForTest({ maxPayloadBytes: 1_000 });
    const queue = uniqueQueue('toolarge');
    let handled = 0;
    await rpc.serve(queue, () => ++handled);
    await assert.rejects(rpc.call(queue, 'x'.repeat(2_000)), { code: 'RESOURCE_EXHAUSTED' });
    assert.equal(await rpc.call(queue, 'small'), 1, 'the large request never reached the server');
  });

  test('a value JSON cannot hold is INVALID_ARGUMENT', async () => {
    const rpc = await connectForTest();
    await assert.rejects(rpc.call(uniqueQueue('bigint'), { n: 1n }), { code: 'INVALID_ARGUMENT' });
  });

  test('bad call arguments are INVALID_ARGUMENT', async () => {
    const rpc = await connectForTest();
    await assert.rejects(rpc.call('', null), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(rpc.call('q', null, { timeoutMs: 0 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(rpc.call('q', null, { timeoutMs: -5 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(rpc.call('q', null, { timeoutMs: 1.5 }), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(
      rpc.serve('', () => null),
      { code: 'INVALID_ARGUMENT' },
    );
    await assert.rejects(
      rpc.serve('q', () => null, { prefetch: -1 }),
      { code: 'INVALID_ARGUMENT' },
    );
  });
});

describe('stats()', () => {
  test('counts calls, errors by code, pending calls and unmatched replies', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stats');
    await rpc.serve(queue, (request) => {
      if (request === 'missing') throw new RpcError('NOT_FOUND', 'no');
      return 'ok';
    });
    await rpc.call(queue, 'a');
    await rpc.call(queue, 'b');
    await assert.rejects(rpc.call(queue, 'missing'), { code: 'NOT_FOUND' });
    await assert.rejects(rpc.call(queue, 'x', { timeoutMs: -1 }), { code: 'INVALID_ARGUMENT' });
    const stats = rpc.stats();
    assert.equal(stats.calls, 4);
    assert.deepEqual(stats.errors, { NOT_FOUND: 1, INVALID_ARGUMENT: 1 });
    assert.equal(stats.pending, 0);
    assert.equal(stats.reconnects, 0);
    assert.equal(stats.servers[0]?.replied, 3);
  });
});
