/**
 * Graceful close and rolling deploys (docs/reliability.md, "Rolling deploys"): a server
 * that closes settles every request it answered before its channel goes, so nothing it
 * answered comes back to run again; work the close would cut short (a cancel, stream credit,
 * a batch reply, a recovery in progress) is finished or stopped, not lost. One private
 * broker for the file; every check of what is left in a queue is a plain AMQP consumer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AMQPClient, type AMQPChannel } from '@cloudamqp/amqp-client';
import {
  connect,
  type ConnectOptions,
  type HandlerContext,
  type RpcConnection,
  type RpcServer,
} from '../../src/index.js';
import { FaultProxy, startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';
import { assertCode, eventually, FAST_RECONNECT, settle, waitForState } from './fault-helpers.js';

failOnUnhandled();

/** Each test's limit: a close that waits for nothing hangs only this long. */
const TEST_TIMEOUT_MS = 40_000;

let broker: PrivateBroker;
let raw: AMQPClient;
let rawChannel: AMQPChannel;
/** Answers on PING_QUEUE: a round trip through the broker for any connection. */
let pinger: RpcConnection;
const PING_QUEUE = 'test.graceful-close.ping';
before(async () => {
  broker = await startPrivateBroker();
  raw = new AMQPClient(broker.url);
  await raw.connect();
  rawChannel = await raw.channel();
  pinger = await connect(broker.url);
  await pinger.serve(PING_QUEUE, () => 'pong');
});
after(async () => {
  await pinger.close();
  await raw.close().catch(() => undefined);
  await broker.close();
});

/** Connects to the private broker and closes when the test ends. */
async function open(
  t: { after: (fn: () => Promise<void>) => void },
  options: Omit<ConnectOptions, 'url'> = {},
  url = broker.url,
): Promise<RpcConnection> {
  const rpc = await connect({ url, reconnect: FAST_RECONNECT, ...options });
  t.after(() => rpc.close());
  return rpc;
}

/** The queue's consumers and ready messages now (a passive declare). */
async function queueState(queue: string): Promise<{ consumers: number; messages: number }> {
  const ok = await rawChannel.queueDeclare(queue, { passive: true });
  return { consumers: ok.consumerCount, messages: ok.messageCount };
}

/** A message a plain consumer found in a queue. */
interface Left {
  body: string | null;
  redelivered: boolean;
}

/**
 * What a plain AMQP consumer finds in `queue`: publishes a marker, consumes until the
 * marker comes back, and returns every message before it (a requeued request comes first).
 */
async function leftInQueue(queue: string): Promise<Left[]> {
  const channel = await raw.channel();
  try {
    const found: Left[] = [];
    const marker = deferred();
    const consumer = await channel.basicConsume(queue, { noAck: true }, (message) => {
      if (message.properties.correlationId === 'marker') marker.resolve();
      else found.push({ body: message.bodyToString(), redelivered: message.redelivered });
    });
    await channel.basicPublish('', queue, 'marker', { correlationId: 'marker' });
    await marker.promise;
    await consumer.cancel();
    return found;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** Resolves once the broker no longer lists a consumer on `queue` (close() has cancelled it). */
function consumerGone(queue: string): Promise<void> {
  return eventually(
    async () => (await queueState(queue)).consumers === 0,
    `no consumer on ${queue}`,
  );
}

/**
 * Resolves once a server of `queue` on `rpc` that is closing has had its consumer
 * cancelled and is waiting for its handlers: the broker dropped the consumer, and a round
 * trip on `rpc`'s own connection, whose reply comes after the cancel-ok, is done.
 */
async function drainingNow(rpc: RpcConnection, queue: string): Promise<void> {
  await consumerGone(queue);
  assert.equal(await rpc.call(PING_QUEUE, null, { timeoutMs: 5_000 }), 'pong');
}

describe('server.close() settles every request it answered', () => {
  test(
    'a cancelled call whose handler runs on, last at close: answered, acked, never redelivered',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const serving = await open(t);
      const caller = await open(t);
      const queue = uniqueQueue('close-last');
      const started = deferred();
      const release = deferred();
      const runs: boolean[] = [];
      const server = await serving.serve(queue, async (_request, ctx) => {
        runs.push(ctx.redelivered);
        started.resolve();
        await release.promise; // ignores the cancel: keeps running
        return 'answered';
      });
      const abort = new AbortController();
      const call = settle(caller.call(queue, 'job', { signal: abort.signal, timeoutMs: 10_000 }));
      await started.promise;
      abort.abort();
      assertCode((await call).error, 'CANCELLED');
      await eventually(() => server.stats.cancelled === 1, 'the cancel to reach the server');
      const closing = server.close();
      await drainingNow(serving, queue);
      release.resolve();
      await closing;
      assert.equal(server.stats.replied, 1);
      assert.deepEqual(await leftInQueue(queue), [], 'the answered request came back');
      assert.deepEqual(runs, [false]);
    },
  );

  test(
    'a batch whose last call finishes during close is answered and acked once',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const serving = await open(t);
      const caller = await open(t, { batch: true });
      const queue = uniqueQueue('close-batch');
      const started = deferred();
      const release = deferred();
      const runs = new Map<string, number>();
      const server = await serving.serve(queue, async (request: string) => {
        runs.set(request, (runs.get(request) ?? 0) + 1);
        if (request === 'slow') {
          started.resolve();
          await release.promise;
        }
        return request;
      });
      // Made in one tick: they travel as one batch message.
      const calls = ['a', 'b', 'slow'].map((request) => caller.call(queue, request));
      await started.promise;
      const closing = server.close();
      await drainingNow(serving, queue);
      release.resolve();
      assert.deepEqual(await Promise.all(calls), ['a', 'b', 'slow']);
      await closing;
      assert.deepEqual(await leftInQueue(queue), [], 'the batch came back');
      assert.deepEqual([...runs.values()], [1, 1, 1]);
    },
  );

  test(
    'a stream running at close gets its credit and finishes; it runs once and is acked',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const serving = await open(t);
      const caller = await open(t);
      const queue = uniqueQueue('close-stream');
      let runs = 0;
      async function* twelve(): AsyncGenerator<number> {
        runs++;
        for (let i = 0; i < 12; i++) {
          await nextTurn(); // a source that produces one item per turn of the event loop
          yield i;
        }
      }
      const server = await serving.serve(queue, twelve, { drainTimeoutMs: 10_000 });
      // A window of 2: the server needs credit from the caller for each further item.
      const stream = caller.stream<number>(queue, null, { window: 2, timeoutMs: 15_000 });
      const items: number[] = [];
      const first = await stream.next(); // the handler runs, and waits for credit soon
      if (!first.done) items.push(first.value);
      const startedAt = Date.now();
      const closing = server.close();
      await consumerGone(queue);
      for await (const item of stream) items.push(item);
      await closing;
      const tookMs = Date.now() - startedAt;
      assert.deepEqual(items, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      assert.ok(tookMs < 5_000, `close() waited ${tookMs} ms: the stream stalled for credit`);
      assert.equal(runs, 1);
      assert.deepEqual(await leftInQueue(queue), []);
    },
  );

  test(
    'a stream cut off by the drain timeout and run again elsewhere fails instead of repeating items',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const first = await open(t);
      const second = await open(t);
      const caller = await open(t);
      const queue = uniqueQueue('close-stream-again');
      const stoppedAgain = deferred<unknown>();
      async function* letters(prefix: string, ctx: HandlerContext): AsyncGenerator<string> {
        ctx.signal.addEventListener('abort', () => stoppedAgain.resolve(ctx.signal.reason));
        for (let i = 0; i < 6; i++) {
          await nextTurn();
          yield `${prefix}${i}`;
        }
      }
      const server = await first.serve(queue, (_request, ctx) => letters('a', ctx), {
        drainTimeoutMs: 300,
      });
      const stream = caller.stream<string>(queue, null, { window: 2, timeoutMs: 15_000 });
      const items: string[] = [];
      const head = await stream.next();
      if (!head.done) items.push(head.value);
      // Nothing more is read meanwhile: the stream waits for credit until the drain timeout.
      await server.close();
      await second.serve(queue, (_request, ctx) => letters('b', ctx));
      let error: unknown;
      try {
        for await (const item of stream) items.push(item);
      } catch (thrown) {
        error = thrown;
      }
      assertCode(error, 'UNAVAILABLE');
      assert.deepEqual(items, ['a0', 'a1', 'a2'], 'items of the second run were mixed in');
      assertCode(await stoppedAgain.promise, 'CANCELLED');
    },
  );

  test(
    "a caller's cancel still reaches a handler while its server drains",
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const serving = await open(t);
      const caller = await open(t);
      const queue = uniqueQueue('close-cancel');
      const started = deferred();
      const aborted = deferred<unknown>();
      const server = await serving.serve(
        queue,
        (_request, ctx) => {
          started.resolve();
          return new Promise((_resolve, reject) => {
            ctx.signal.addEventListener('abort', () => {
              aborted.resolve(ctx.signal.reason);
              reject(ctx.signal.reason as Error);
            });
          });
        },
        { drainTimeoutMs: 20_000 },
      );
      const abort = new AbortController();
      const call = settle(caller.call(queue, 'job', { signal: abort.signal, timeoutMs: 30_000 }));
      await started.promise;
      const startedAt = Date.now();
      const closing = server.close();
      await consumerGone(queue);
      abort.abort();
      assertCode((await call).error, 'CANCELLED');
      assertCode(await aborted.promise, 'CANCELLED');
      await closing;
      const tookMs = Date.now() - startedAt;
      assert.equal(server.stats.cancelled, 1);
      assert.ok(tookMs < 10_000, `close() took ${tookMs} ms: the cancel was not delivered`);
      assert.deepEqual(await leftInQueue(queue), [], 'the cancelled request came back');
    },
  );

  test(
    'a connection lost while draining ends the drain: handlers abort, close() resolves',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      await using proxy = await FaultProxy.start(broker.url);
      const serving = await open(t, {}, proxy.url(broker.url));
      const caller = await open(t);
      const queue = uniqueQueue('close-lost');
      const started = deferred();
      const aborted = deferred<unknown>();
      const server = await serving.serve(
        queue,
        (_request, ctx) => {
          started.resolve();
          return new Promise((_resolve, reject) => {
            ctx.signal.addEventListener('abort', () => {
              aborted.resolve(ctx.signal.reason);
              reject(ctx.signal.reason as Error);
            });
          });
        },
        { drainTimeoutMs: 20_000 },
      );
      const call = settle(caller.call(queue, 'job', { timeoutMs: 20_000 }));
      await started.promise;
      const startedAt = Date.now();
      const closing = server.close();
      await consumerGone(queue);
      proxy.resetAll();
      // The broker requeued the request with the connection: its handler need not go on.
      assertCode(await aborted.promise, 'UNAVAILABLE');
      await closing;
      const tookMs = Date.now() - startedAt;
      assert.ok(tookMs < 10_000, `close() took ${tookMs} ms after the connection was lost`);
      // Not answered, so not lost: another server gets it.
      await caller.serve(queue, (_request, ctx) => `rescued, redelivered ${ctx.redelivered}`);
      assert.equal((await call).value, 'rescued, redelivered true');
    },
  );

  test(
    'close() during a recovery leaves no consumer behind',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      await using proxy = await FaultProxy.start(broker.url);
      const serving = await open(t, {}, proxy.url(broker.url));
      const queue = uniqueQueue('close-recovering');
      const zombie = deferred<string>();
      const server = await serving.serve(queue, (request: string) => {
        zombie.resolve(request);
        return request;
      });
      // close() as soon as the connection is back, while the server is consuming again.
      let closing: Promise<void> | undefined;
      const stop = serving.onStateChange((state) => {
        if (state !== 'connected') return;
        stop();
        queueMicrotask(() => {
          closing = server.close();
        });
      });
      proxy.resetAll();
      await waitForState(serving, 'connected');
      await eventually(() => closing !== undefined, 'close() to start');
      await closing;
      // Whatever the recovery was doing, nothing consumes the queue for the closed server.
      const replies = await rawReplyQueue();
      await rawChannel.basicPublish('', queue, '"after close"', {
        contentType: 'application/json',
        replyTo: replies.name,
        correlationId: 'late',
      });
      const rescuer = await open(t);
      const rescued = deferred<string>();
      await rescuer.serve(queue, (request: string) => {
        rescued.resolve(request);
        return request;
      });
      const taker = await Promise.race([
        rescued.promise.then(() => 'a live server'),
        zombie.promise.then(() => 'the closed server'),
      ]);
      assert.equal(taker, 'a live server');
    },
  );
});

describe('rpc.close()', () => {
  test(
    'cancels its pending calls on the server, not only locally',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const serving = await open(t);
      const queue = uniqueQueue('close-caller');
      const started = deferred();
      const aborted = deferred<unknown>();
      const server = await serving.serve(queue, (_request, ctx) => {
        started.resolve();
        return new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted.resolve(ctx.signal.reason);
            reject(ctx.signal.reason as Error);
          });
        });
      });
      const caller = await connect({ url: broker.url });
      const call = settle(caller.call(queue, 'job', { timeoutMs: 20_000 }));
      await started.promise;
      await caller.close();
      assertCode((await call).error, 'CANCELLED');
      assertCode(await aborted.promise, 'CANCELLED');
      assert.equal(server.stats.cancelled, 1);
      await server.close();
      assert.deepEqual(await leftInQueue(queue), []);
    },
  );

  test(
    'stops the streams it was reading on their servers',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const serving = await open(t);
      const queue = uniqueQueue('close-caller-stream');
      const stopped = deferred<unknown>();
      async function* endless(_request: unknown, ctx: HandlerContext): AsyncGenerator<number> {
        ctx.signal.addEventListener('abort', () => stopped.resolve(ctx.signal.reason));
        for (let i = 0; ; i++) {
          await nextTurn();
          yield i;
        }
      }
      const server = await serving.serve(queue, endless);
      const caller = await connect({ url: broker.url });
      const stream = caller.stream<number>(queue, null, { window: 2, timeoutMs: 20_000 });
      assert.deepEqual(await stream.next(), { value: 0, done: false });
      await caller.close();
      // Without a cancel it would wait for credit until the stream's deadline.
      assertCode(await stopped.promise, 'CANCELLED');
      await eventually(() => server.stats.active === 0, 'the stream to end on the server');
      await server.close();
      assert.deepEqual(await leftInQueue(queue), []);
    },
  );

  test(
    'with servers on the connection: every request they answered is acked',
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const caller = await open(t);
      const queue = uniqueQueue('close-rpc');
      const started = deferred();
      const release = deferred();
      let runs = 0;
      const serving = await connect({ url: broker.url });
      await serving.serve(queue, async () => {
        runs++;
        started.resolve();
        await release.promise;
        return 'answered';
      });
      const call = caller.call(queue, 'job', { timeoutMs: 10_000 });
      await started.promise;
      const closing = serving.close();
      await drainingNow(serving, queue);
      release.resolve();
      assert.equal(await call, 'answered');
      await closing;
      assert.deepEqual(await leftInQueue(queue), []);
      assert.equal(runs, 1);
    },
  );

  test('await using: the same', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const caller = await open(t);
    const queue = uniqueQueue('close-using');
    const started = deferred();
    const release = deferred();
    let runs = 0;
    let call: Promise<unknown> | undefined;
    {
      await using serving = await connect({ url: broker.url });
      await using server = await serving.serve(queue, async () => {
        runs++;
        started.resolve();
        await release.promise;
        return 'answered';
      });
      call = caller.call(queue, 'job', { timeoutMs: 10_000 });
      await started.promise;
      assert.equal(server.stats.active, 1);
      // Released once the scope's disposal has begun (it cancels the consumer first).
      drainingNow(serving, queue).then(release.resolve, () => undefined);
    }
    assert.equal(await call, 'answered');
    assert.deepEqual(await leftInQueue(queue), []);
    assert.equal(runs, 1);
  });
});

/** A raw reply queue for requests published by hand. */
async function rawReplyQueue(): Promise<{ name: string }> {
  const { name } = await rawChannel.queueDeclare('', { exclusive: true, autoDelete: true });
  return { name };
}

/** One server instance of the rolling deploy: its own connection, like its own process. */
interface Instance {
  readonly rpc: RpcConnection;
  readonly server: RpcServer;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

describe('rolling deploy (docs/reliability.md, "Rolling deploys")', () => {
  const INSTANCES = 3;
  const REPLACEMENTS = 6;
  const IN_FLIGHT = 64;

  test(
    `${INSTANCES} instances replaced one by one (${REPLACEMENTS} in all) under ${IN_FLIGHT} calls in flight: 0 failed, 0 run twice`,
    { timeout: TEST_TIMEOUT_MS },
    async (t) => {
      const queue = uniqueQueue('rolling');
      const caller = await open(t);
      /** Handler runs per request id: more than 1 is a request run twice. */
      const runs = new Map<number, number>();
      const handler = async (request: { id: number; workMs: number }): Promise<number> => {
        runs.set(request.id, (runs.get(request.id) ?? 0) + 1);
        // Some work, so that requests are in flight on every instance when it closes.
        await new Promise((resolve) => setTimeout(resolve, request.workMs));
        return request.id;
      };
      const start = async (): Promise<Instance> => {
        const rpc = await connect({ url: broker.url });
        return { rpc, server: await rpc.serve(queue, handler) };
      };
      const instances: Instance[] = [];
      for (let i = 0; i < INSTANCES; i++) instances.push(await start());
      t.after(async () => {
        for (const instance of instances) await instance.rpc.close();
      });

      let stopped = false;
      let nextId = 0;
      let answered = 0;
      const failed = new Map<string, number>();
      const wrong: number[] = [];
      const latencies: Array<{ at: number; ms: number }> = [];
      const worker = async (): Promise<void> => {
        while (!stopped) {
          const id = nextId++;
          const sentAt = performance.now();
          try {
            const reply = await caller.call(queue, { id, workMs: id % 5 }, { timeoutMs: 20_000 });
            if (reply !== id) wrong.push(id);
            answered++;
            latencies.push({ at: sentAt, ms: performance.now() - sentAt });
          } catch (error) {
            const code = error instanceof Error && 'code' in error ? String(error.code) : 'other';
            failed.set(code, (failed.get(code) ?? 0) + 1);
          }
        }
      };
      const workers = Array.from({ length: IN_FLIGHT }, () => worker());
      await eventually(() => answered >= 500, 'the load to warm up');
      // The same load with no deploy going on: what the roll's latency compares with.
      const steadyStart = performance.now();
      await eventually(() => answered >= 1500, 'calls before the roll');

      const rollStart = performance.now();
      for (let i = 0; i < REPLACEMENTS; i++) {
        const fresh = await start(); // the new version is up...
        const old = instances.shift();
        instances.push(fresh);
        await old?.server.close(); // ...then the old one drains and stops, as a deploy does
        await old?.rpc.close();
      }
      const rollEnd = performance.now();
      // Calls go on for a moment after the roll, answered by the new instances only.
      const after = answered;
      await eventually(() => answered >= after + 1000, 'calls after the roll');
      const steadyEnd = performance.now();
      stopped = true;
      await Promise.all(workers);
      for (const instance of instances.splice(0)) {
        await instance.server.close();
        await instance.rpc.close();
      }

      const twice = [...runs.values()].filter((count) => count > 1).length;
      /** Latencies of the calls sent between `from` and `to`, sorted. */
      const sentBetween = (from: number, to: number): number[] =>
        latencies
          .filter((sample) => sample.at >= from && sample.at < to)
          .map((sample) => sample.ms)
          .sort((a, b) => a - b);
      const before = sentBetween(steadyStart, rollStart);
      const during = sentBetween(rollStart, rollEnd);
      const afterwards = sentBetween(rollEnd, steadyEnd);
      const round = (ms: number): string => ms.toFixed(1);
      t.diagnostic(
        `calls ${nextId}, answered ${answered}, failed ${[...failed.values()].reduce((a, b) => a + b, 0)} ` +
          `${JSON.stringify(Object.fromEntries(failed))}, run twice ${twice}; ` +
          `roll ${round(rollEnd - rollStart)} ms, ${during.length} calls sent during it: ` +
          `p50 ${round(percentile(during, 50))} ms, p99 ${round(percentile(during, 99))} ms, ` +
          `max ${round(percentile(during, 100))} ms; p50/p99 of the ${before.length} calls ` +
          `before it ${round(percentile(before, 50))}/${round(percentile(before, 99))} ms, ` +
          `of the ${afterwards.length} after it ` +
          `${round(percentile(afterwards, 50))}/${round(percentile(afterwards, 99))} ms`,
      );
      assert.deepEqual(Object.fromEntries(failed), {}, 'calls failed');
      assert.deepEqual(wrong, [], 'wrong replies');
      assert.equal(twice, 0, 'requests run twice');
      assert.equal(runs.size, answered, 'every answered call ran (once)');
      assert.equal(caller.stats().unmatchedReplies, 0, 'second replies');
      assert.deepEqual(await leftInQueue(queue), []);
    },
  );
});
