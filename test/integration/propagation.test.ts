// Deadlines and cancellation travel end to end (issue 7, parts 1 and 2), on the real broker:
// nested calls inherit the handler's remaining deadline through `parent: ctx`, and a caller's
// abort reaches the handler running its call through the control plane.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RpcError, type HandlerContext } from '../../src/index.js';
import { AMQPClient } from '@cloudamqp/amqp-client';
import {
  AMQP_URL,
  codeOf,
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
} from '../helpers.js';

failOnUnhandled();

/** Resolves with the time (performance.now()) at which `signal` aborts, and its reason. */
function whenAborted(signal: AbortSignal): Promise<{ at: number; reason: unknown }> {
  return new Promise((resolve) => {
    const done = () => resolve({ at: performance.now(), reason: signal.reason });
    if (signal.aborted) done();
    else signal.addEventListener('abort', done, { once: true });
  });
}

describe('deadline propagation', () => {
  test('a nested call inherits the remaining deadline, not its own longer timeout', async () => {
    const rpc = await connectForTest();
    const [front, back] = [uniqueQueue('prop.front'), uniqueQueue('prop.back')];
    const seenByBack = deferred<number | undefined>();
    await rpc.serve(back, (_request, ctx) => {
      seenByBack.resolve(ctx.deadline);
      return 'back';
    });
    await rpc.serve(front, (_request, ctx) =>
      rpc.call(back, null, { parent: ctx, timeoutMs: 60_000 }),
    );
    const before = Date.now();
    assert.equal(await rpc.call(front, null, { timeoutMs: 3_000 }), 'back');
    const deadline = await seenByBack.promise;
    assert.ok(deadline !== undefined);
    // The caller's deadline, give or take a clock tick and rounding: not 60 s away.
    assert.ok(deadline <= before + 3_000 + 50, `${deadline - before} ms`);
    assert.ok(deadline >= before + 3_000 - 500, `${deadline - before} ms`);
  });

  test("a nested call's own shorter timeout wins", async () => {
    const rpc = await connectForTest();
    const [front, back] = [uniqueQueue('prop.front'), uniqueQueue('prop.back')];
    const seenByBack = deferred<number | undefined>();
    await rpc.serve(back, (_request, ctx) => {
      seenByBack.resolve(ctx.deadline);
      return 'back';
    });
    await rpc.serve(front, (_request, ctx) =>
      rpc.call(back, null, { parent: ctx, timeoutMs: 1_000 }),
    );
    const before = Date.now();
    await rpc.call(front, null, { timeoutMs: 20_000 });
    const deadline = await seenByBack.promise;
    assert.ok(deadline !== undefined && deadline <= Date.now() + 1_000, 'not the 1 s timeout');
    assert.ok(deadline < before + 20_000 - 5_000);
  });

  test('the deadline passing in the middle of a chain ends every level with DEADLINE_EXCEEDED', async () => {
    const rpc = await connectForTest();
    const [front, back] = [uniqueQueue('prop.front'), uniqueQueue('prop.back')];
    const backAborted = deferred<unknown>();
    const frontOutcome = deferred<string>();
    await rpc.serve(back, async (_request, ctx) => {
      backAborted.resolve((await whenAborted(ctx.signal)).reason);
      return 'too late';
    });
    await rpc.serve(front, async (_request, ctx) => {
      frontOutcome.resolve(await codeOf(rpc.call(back, null, { parent: ctx })));
      return 'too late';
    });
    assert.equal(await codeOf(rpc.call(front, null, { timeoutMs: 400 })), 'DEADLINE_EXCEEDED');
    assert.equal(await frontOutcome.promise, 'DEADLINE_EXCEEDED');
    const reason = await backAborted.promise;
    assert.ok(reason instanceof RpcError && reason.code === 'DEADLINE_EXCEEDED');
  });

  test('a parent whose deadline has passed fails the nested call before anything is sent', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('prop.never');
    let ran = 0;
    await rpc.serve(queue, () => ++ran);
    const expired: HandlerContext['deadline'] = Date.now() - 1;
    const parent = { deadline: expired, signal: new AbortController().signal };
    assert.equal(await codeOf(rpc.call(queue, null, { parent })), 'DEADLINE_EXCEEDED');
    assert.equal(await rpc.call(queue, null), 1, 'only the second call ran');
  });
});

describe('cancellation propagation', () => {
  test("the caller's abort aborts the handler's ctx.signal with CANCELLED, within 50 ms (median)", async (t) => {
    const caller = await connectForTest();
    const server = await connectForTest();
    const queue = uniqueQueue('prop.cancel');
    let started = deferred<AbortSignal>();
    await server.serve(queue, async (_request, ctx) => {
      started.resolve(ctx.signal);
      await whenAborted(ctx.signal);
      return 'stopped';
    });
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) {
      started = deferred<AbortSignal>();
      const abort = new AbortController();
      const call = caller.call(queue, i, { signal: abort.signal });
      const signal = await started.promise;
      const abortedAt = performance.now();
      abort.abort();
      assert.equal(await codeOf(call), 'CANCELLED');
      const seen = await whenAborted(signal);
      assert.ok(seen.reason instanceof RpcError && seen.reason.code === 'CANCELLED');
      delays.push(seen.at - abortedAt);
    }
    delays.sort((a, b) => a - b);
    const median = delays[Math.floor(delays.length / 2)] ?? Infinity;
    t.diagnostic(
      `abort to handler abort: median ${median.toFixed(1)} ms, max ${delays.at(-1)?.toFixed(1)} ms`,
    );
    assert.ok(median < 50, `median ${median.toFixed(1)} ms; all: ${delays.join(', ')}`);
    assert.equal(server.stats().servers[0]?.cancelled, 9);
  });

  for (const replyMode of ['direct', 'expiring-queue'] as const) {
    test(`replyMode '${replyMode}': the abort reaches the handler too`, async () => {
      const caller = await connectForTest({ replyMode });
      const server = await connectForTest();
      const queue = uniqueQueue('prop.mode');
      const started = deferred<AbortSignal>();
      await server.serve(queue, async (_request, ctx) => {
        started.resolve(ctx.signal);
        await whenAborted(ctx.signal);
        return 'stopped';
      });
      const abort = new AbortController();
      const call = caller.call(queue, null, { signal: abort.signal, timeoutMs: 20_000 });
      const signal = await started.promise;
      abort.abort();
      assert.equal(await codeOf(call), 'CANCELLED');
      assert.equal(((await whenAborted(signal)).reason as RpcError).code, 'CANCELLED');
    });
  }

  test('cancelling travels down a chain: the nested handler is aborted too', async () => {
    const rpc = await connectForTest();
    const [front, back] = [uniqueQueue('prop.front'), uniqueQueue('prop.back')];
    const backStarted = deferred<AbortSignal>();
    await rpc.serve(back, async (_request, ctx) => {
      backStarted.resolve(ctx.signal);
      await whenAborted(ctx.signal);
      return 'stopped';
    });
    await rpc.serve(front, (_request, ctx) => rpc.call(back, null, { parent: ctx }));
    const abort = new AbortController();
    const call = rpc.call(front, null, { signal: abort.signal, timeoutMs: 20_000 });
    const backSignal = await backStarted.promise;
    abort.abort();
    assert.equal(await codeOf(call), 'CANCELLED');
    const { reason } = await whenAborted(backSignal);
    assert.ok(reason instanceof RpcError && reason.code === 'CANCELLED');
  });

  test("a cancel with the call's id but another caller's reply_to leaves the call alone", async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('prop.foreign');
    const started = deferred<{ id: string | undefined; signal: AbortSignal }>();
    await rpc.serve(queue, async (_request, ctx) => {
      started.resolve({ id: ctx.correlationId, signal: ctx.signal });
      await whenAborted(ctx.signal);
      return 'stopped';
    });
    const abort = new AbortController();
    const call = rpc.call(queue, null, { signal: abort.signal, timeoutMs: 20_000 });
    const { id, signal } = await started.promise;
    // Another caller, with a colliding correlation id: its cancel names its own reply queue.
    const client = new AMQPClient(AMQP_URL);
    await client.connect();
    const channel = await client.channel();
    await channel.basicPublish('rabbit-rpc.control', queue, '', {
      correlationId: id ?? '',
      headers: { 'rpc-control': 'cancel', 'rpc-reply-to': 'amq.gen-someone-else' },
    });
    // Then the real caller's cancel: by then the foreign one has come and gone.
    await waitFor(() => (rpc.stats().servers[0]?.cancelled === 1 ? true : undefined));
    assert.equal(signal.aborted, false);
    await client.close();
    abort.abort();
    assert.equal(await codeOf(call), 'CANCELLED');
    assert.equal(((await whenAborted(signal)).reason as RpcError).code, 'CANCELLED');
  });

  test('a request cancelled while still queued never runs', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('prop.queued');
    const release = deferred();
    const started: unknown[] = [];
    const firstStarted = deferred();
    await rpc.serve(
      queue,
      async (request) => {
        started.push(request);
        firstStarted.resolve();
        await release.promise;
        return request;
      },
      { prefetch: 1 },
    );
    const first = rpc.call(queue, 'first');
    await firstStarted.promise;
    const abort = new AbortController();
    const second = rpc.call(queue, 'second', { signal: abort.signal });
    // The request is in the queue (prefetch 1 holds it back) once the broker confirmed it.
    await waitFor(() => (rpc.stats().pending === 2 ? true : undefined));
    abort.abort();
    assert.equal(await codeOf(second), 'CANCELLED');
    // The cancel reaches the server before the first call ends and frees the prefetch slot.
    await waitFor(() => (rpc.stats().servers[0]?.cancelled === 1 ? true : undefined));
    release.resolve();
    assert.equal(await rpc.call(queue, 'third'), 'third');
    assert.equal(await first, 'first');
    assert.deepEqual(started, ['first', 'third']);
    assert.equal(rpc.stats().servers[0]?.cancelled, 1);
  });
});

/**
 * Polls `probe` every few milliseconds until it returns a value: for counters with no event
 * to await (a control message's arrival). Bounded by the test timeout.
 */
async function waitFor<T>(probe: () => T | undefined): Promise<T> {
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
