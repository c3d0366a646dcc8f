/**
 * Faults on the serving side (scenarios 1-4, 12-14, 22-24 of docs/reliability.md): servers
 * that die mid-request, callers that go away, stale and poison requests, handler crashes,
 * a deleted service queue and the broker's consumer timeout. One private broker for the file.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AMQPClient, type AMQPChannel } from '@cloudamqp/amqp-client';
import { connect, type HandlerContext } from '../../src/index.js';
import { FaultProxy, startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { collectReplies, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';
import { assertCode, eventually, FAST_RECONNECT, rejectsWith, settle } from './fault-helpers.js';

failOnUnhandled();

let broker: PrivateBroker;
let raw: AMQPClient;
let rawChannel: AMQPChannel;
before(async () => {
  broker = await startPrivateBroker();
  raw = new AMQPClient(broker.url);
  await raw.connect();
  rawChannel = await raw.channel();
});
after(async () => {
  await raw.close().catch(() => undefined);
  await broker.close();
});

/** Connects to the private broker (reconnect on, fast) and closes when the test ends. */
async function open(t: { after: (fn: () => Promise<void>) => void }, url = broker.url) {
  const rpc = await connect({ url, reconnect: FAST_RECONNECT });
  t.after(() => rpc.close());
  return rpc;
}

/** Messages in `queue` now, via a passive declare on the raw channel. */
async function messagesIn(queue: string): Promise<number> {
  const channel = await raw.channel();
  try {
    const ok = await channel.queueDeclare(queue, { passive: true });
    return ok.messageCount;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** A raw reply queue: replies sent to it are collected in `replies`. */
async function rawReplyQueue() {
  return collectReplies(await raw.channel());
}

describe('at-least-once: a server dies mid-request (scenarios 1, 2)', () => {
  test('the request comes back to the reconnected server, redelivered, with the same message id', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const server = await open(t, proxy.url(broker.url));
    const caller = await open(t);
    const queue = uniqueQueue('redeliver');
    const seen: Array<{ id: string | undefined; redelivered: boolean }> = [];
    const firstRunning = deferred();
    const executed = new Set<string>();
    await server.serve(queue, async (request: string, ctx: HandlerContext) => {
      seen.push({ id: ctx.messageId, redelivered: ctx.redelivered });
      if (seen.length === 1) {
        firstRunning.resolve();
        // Dies before replying: waits until the connection under it is gone.
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        return 'lost';
      }
      // Deduplication by message id: a second execution would be visible here.
      const id = ctx.messageId ?? '';
      const duplicate = executed.has(id);
      executed.add(id);
      return `${request} (duplicate: ${String(duplicate)})`;
    });
    const call = settle(caller.call<string>(queue, 'job', { timeoutMs: 20_000 }));
    await firstRunning.promise;
    const cutAt = Date.now();
    proxy.resetAll();
    const result = await call;
    t.diagnostic(
      `answered by the redelivery ${result.at - cutAt} ms after the server's connection dropped`,
    );
    assert.equal(result.value, 'job (duplicate: false)');
    assert.equal(seen.length, 2);
    assert.deepEqual(seen[0], { id: seen[1]?.id, redelivered: false });
    assert.equal(seen[1]?.redelivered, true);
    assert.ok(seen[0].id, 'requests carry a message id');
    // Exactly one reply reached the caller.
    assert.equal(await caller.call(queue, 'next', { timeoutMs: 5000 }), 'next (duplicate: false)');
    assert.equal(caller.stats().unmatchedReplies, 0);
  });

  test('two replies to one call (a server replied, died before its ack, ran again): one resolves, the other is dropped and counted', async (t) => {
    const caller = await open(t);
    const queue = uniqueQueue('double');
    await rawChannel.queueDeclare(queue, { durable: true, autoDelete: false });
    // A server that replies twice, as the broker's redelivery makes a crashed server do.
    const consumer = await rawChannel.basicConsume(queue, { noAck: false }, (message) => {
      const { replyTo, correlationId } = message.properties;
      const properties = { correlationId: correlationId ?? '', contentType: 'application/json' };
      void rawChannel.basicPublish('', replyTo ?? '', '"first"', properties);
      void rawChannel.basicPublish('', replyTo ?? '', '"second"', properties);
      void message.ack();
    });
    t.after(() => consumer.cancel().then(() => undefined));
    assert.equal(await caller.call(queue, 'x', { timeoutMs: 5000 }), 'first');
    await eventually(() => caller.stats().unmatchedReplies === 1, 'the duplicate reply');
    assert.equal(caller.stats().pending, 0);
  });

  test('no server left: the caller gets DEADLINE_EXCEEDED at its deadline and the request is not lost', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const server = await connect({ url: proxy.url(broker.url), reconnect: false });
    t.after(() => server.close());
    const caller = await open(t);
    const queue = uniqueQueue('orphan');
    const running = deferred();
    await server.serve(queue, async (_request, ctx) => {
      running.resolve();
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    });
    const startedAt = Date.now();
    const call = settle(caller.call(queue, 'job', { timeoutMs: 1500 }));
    await running.promise;
    proxy.resetAll();
    await server.closed;
    // Back in the queue, waiting for a server, until its TTL (the caller's deadline) ends it.
    await eventually(async () => (await messagesIn(queue)) === 1, 'the request requeued');
    const result = await call;
    assertCode(result.error, 'DEADLINE_EXCEEDED');
    const took = result.at - startedAt;
    assert.ok(took >= 1490 && took < 1800, `rejected after ${took} ms`);
  });
});

describe('a CPU-bound handler stops heartbeats (scenario 3)', () => {
  test('the broker drops the connection; the process survives, the request is redelivered and answered once', async (t) => {
    const server = await connect({ url: broker.url, heartbeatSec: 1, reconnect: FAST_RECONNECT });
    t.after(() => server.close());
    const caller = await open(t);
    const queue = uniqueQueue('cpu');
    const runs: boolean[] = [];
    await server.serve(queue, (request: string, ctx) => {
      runs.push(ctx.redelivered);
      if (runs.length === 1) {
        const until = Date.now() + 4000; // blocks the event loop: no heartbeats go out
        while (Date.now() < until);
      }
      return `${request} done`;
    });
    const reply = await caller.call(queue, 'work', { timeoutMs: 20_000 });
    assert.equal(reply, 'work done');
    assert.deepEqual(runs, [false, true]);
    assert.ok(server.stats().reconnects >= 1, 'the blocked connection was not replaced');
    assert.equal(caller.stats().unmatchedReplies, 0);
  });
});

describe('the caller goes away (scenarios 4, 22)', () => {
  for (const replyMode of ['queue', 'direct'] as const) {
    test(`replyMode ${replyMode}: the reply to a departed caller is dropped, the server acks and goes on`, async (t) => {
      await using proxy = await FaultProxy.start(broker.url);
      const server = await open(t);
      const caller = await connect({ url: proxy.url(broker.url), replyMode, reconnect: false });
      t.after(() => caller.close());
      const queue = uniqueQueue(`departed-${replyMode}`);
      const running = deferred();
      const release = deferred();
      const rpcServer = await server.serve(queue, async (request: string) => {
        if (request === 'slow') {
          running.resolve();
          await release.promise;
        }
        return request;
      });
      // The mode works at all.
      assert.equal(await caller.call(queue, 'quick', { timeoutMs: 5000 }), 'quick');
      const call = settle(caller.call(queue, 'slow', { timeoutMs: 20_000 }));
      await running.promise;
      proxy.resetAll();
      assertCode((await call).error, 'UNAVAILABLE');
      release.resolve();
      await eventually(() => rpcServer.stats.replied === 2, 'the reply to the departed caller');
      assert.equal(await messagesIn(queue), 0, 'the request was not requeued');
      assert.equal(server.state, 'connected');
      const other = await open(t);
      assert.equal(await other.call(queue, 'still serving', { timeoutMs: 5000 }), 'still serving');
      assert.equal(rpcServer.stats.recoveries, 0);
    });
  }
});

describe('stale requests (scenario 12)', () => {
  test('a request whose deadline passed in the queue is never run', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('stale');
    await rawChannel.queueDeclare(queue, { durable: true, autoDelete: false });
    const started = Date.now();
    await assert.rejects(
      rpc.call(queue, 'old', { timeoutMs: 300 }),
      rejectsWith('DEADLINE_EXCEEDED'),
    );
    const took = Date.now() - started;
    assert.ok(took >= 295 && took < 600, `rejected after ${took} ms`);
    const handled: unknown[] = [];
    const server = await rpc.serve(queue, (request) => {
      handled.push(request);
      return request;
    });
    assert.equal(await rpc.call(queue, 'new', { timeoutMs: 5000 }), 'new');
    assert.deepEqual(handled, ['new'], 'the expired request ran');
    // Either the broker's TTL dropped it, or (a few ms short of its TTL) the server's
    // deadline check did: it never ran either way.
    assert.equal(await messagesIn(queue), 0);
    t.diagnostic(`dropped by the server's deadline check: ${server.stats.expired}`);
  });

  test('a delivered request past its deadline header is acked unrun (TTL does not cover prefetched messages)', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('late-header');
    const handled: unknown[] = [];
    const server = await rpc.serve(queue, (request) => {
      handled.push(request);
      return request;
    });
    const replies = await rawReplyQueue();
    await rawChannel.basicPublish('', queue, '"expired"', {
      contentType: 'application/json',
      replyTo: replies.name,
      correlationId: 'c1',
      headers: { 'rpc-deadline': Date.now() - 1000 },
    });
    await eventually(() => server.stats.expired === 1, 'the expired request to be dropped');
    assert.deepEqual(handled, []);
    assert.equal(await messagesIn(queue), 0);
  });

  test('a reply that comes after the deadline is dropped and counted', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('late-reply');
    const aborted = deferred<unknown>();
    await rpc.serve(queue, async (request: string, ctx) => {
      ctx.signal.addEventListener('abort', () => aborted.resolve(ctx.signal.reason));
      await new Promise((resolve) => setTimeout(resolve, 600)); // ignores the signal
      return request;
    });
    await assert.rejects(
      rpc.call(queue, 'x', { timeoutMs: 200 }),
      rejectsWith('DEADLINE_EXCEEDED'),
    );
    assertCode(await aborted.promise, 'DEADLINE_EXCEEDED');
    await eventually(() => rpc.stats().unmatchedReplies === 1, 'the late reply');
    assert.equal(rpc.stats().pending, 0);
  });
});

describe('poison requests and handler crashes (scenarios 13, 14)', () => {
  const poison = [
    { name: 'invalid JSON', body: '{bad', contentType: 'application/json' },
    { name: 'an unsupported content type', body: '<x/>', contentType: 'application/xml' },
  ];
  for (const { name, body, contentType } of poison) {
    test(`${name}: an INVALID_ARGUMENT reply, acked, never redelivered`, async (t) => {
      const rpc = await open(t);
      const queue = uniqueQueue('poison');
      let handlerRuns = 0;
      const server = await rpc.serve(queue, () => ++handlerRuns);
      const replies = await rawReplyQueue();
      await rawChannel.basicPublish('', queue, body, {
        contentType,
        replyTo: replies.name,
        correlationId: 'p1',
      });
      const [reply] = await replies.next(1);
      assert.equal(reply?.properties.correlationId, 'p1');
      assert.equal(reply.properties.headers?.['rpc-status'], 'INVALID_ARGUMENT');
      assert.equal(await rpc.call(queue, 'fine', { timeoutMs: 5000 }), 1);
      assert.equal(handlerRuns, 1);
      assert.equal(await messagesIn(queue), 0);
      assert.equal(replies.replies.length, 1);
      assert.equal(server.stats.recoveries, 0);
    });
  }

  test('with deadLetterExchange: the poison request is answered, then dead-lettered', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('poison-dlx');
    const dlx = `${queue}.dlx`;
    const parked = `${queue}.parked`;
    await rawChannel.exchangeDeclare(dlx, 'fanout', { autoDelete: true });
    await rawChannel.queueDeclare(parked, { autoDelete: false });
    await rawChannel.queueBind(parked, dlx, '');
    t.after(async () => {
      await rawChannel.queueDelete(parked);
      await rawChannel.exchangeDelete(dlx);
    });
    await rpc.serve(queue, () => 'ok', { deadLetterExchange: dlx });
    const replies = await rawReplyQueue();
    await rawChannel.basicPublish('', queue, '{bad', {
      contentType: 'application/json',
      replyTo: replies.name,
      correlationId: 'p2',
    });
    const [reply] = await replies.next(1);
    assert.equal(reply?.properties.headers?.['rpc-status'], 'INVALID_ARGUMENT');
    await eventually(async () => (await messagesIn(parked)) === 1, 'the dead-lettered request');
    const dead = await rawChannel.basicGet(parked, { noAck: true });
    assert.equal(dead?.bodyToString(), '{bad');
    assert.equal(await messagesIn(queue), 0);
  });

  test('quorum queue with deliveryLimit: a request that keeps killing its server is dead-lettered', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const rpc = await open(t, proxy.url(broker.url));
    const queue = uniqueQueue('limit');
    const dlx = `${queue}.dlx`;
    const parked = `${queue}.parked`;
    await rawChannel.exchangeDeclare(dlx, 'fanout', { autoDelete: true });
    await rawChannel.queueDeclare(parked, { autoDelete: false });
    await rawChannel.queueBind(parked, dlx, '');
    t.after(async () => {
      await rawChannel.queueDelete(parked);
      await rawChannel.exchangeDelete(dlx);
    });
    const deliveries: unknown[] = [];
    let delivered = deferred();
    await rpc.serve(
      queue,
      async (_request, ctx) => {
        deliveries.push(ctx.headers['x-delivery-count']);
        delivered.resolve();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      },
      { queueType: 'quorum', deliveryLimit: 1, deadLetterExchange: dlx },
    );
    await rawChannel.basicPublish('', queue, '"deadly"', { contentType: 'application/json' });
    // Each delivery "crashes" the server (its connection is reset); it reconnects each time.
    for (let i = 0; i < 2; i++) {
      await delivered.promise;
      delivered = deferred();
      proxy.resetAll();
    }
    await eventually(async () => (await messagesIn(parked)) === 1, 'the dead-lettered request');
    assert.equal(deliveries.length, 2, `delivered ${deliveries.length} times`);
    assert.equal(deliveries[0], undefined);
    assert.equal(Number(deliveries[1]), 1);
    await rawChannel.queueDelete(queue);
  });

  test('a handler that throws: an error reply, no redelivery, no stack sent', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('throws');
    let runs = 0;
    await rpc.serve(queue, () => {
      runs++;
      throw new Error('boom');
    });
    const error = assertCode(
      await rpc.call(queue, 1, { timeoutMs: 5000 }).then(
        () => undefined,
        (e: unknown) => e,
      ),
      'UNKNOWN',
    );
    assert.equal(error.message, 'boom');
    assert.equal(error.details, undefined);
    assert.equal(runs, 1);
    assert.equal(await messagesIn(queue), 0);
  });
});

describe('the service queue is deleted under its server (scenario 23)', () => {
  test('the server declares it again and consumes again', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('deleted');
    const server = await rpc.serve(queue, (n: number) => n + 1);
    await rawChannel.queueDelete(queue);
    await eventually(() => server.stats.recoveries === 1, 'the server to recover');
    assert.equal(await rpc.call(queue, 1, { timeoutMs: 5000 }), 2);
    assert.equal(rpc.state, 'connected');
  });

  test('with declare: false the server stops and reports it through server.closed', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('deleted-nodeclare');
    await rawChannel.queueDeclare(queue, { durable: true, autoDelete: false });
    const server = await rpc.serve(queue, () => 'ok', { declare: false });
    await rawChannel.queueDelete(queue);
    const error = await server.closed;
    assertCode(error, 'NOT_FOUND');
    assert.deepEqual(rpc.stats().servers, []);
    assert.equal(rpc.state, 'connected');
  });
});

describe("the broker's consumer timeout closes the server's channel (scenario 24)", () => {
  test('the channel is reopened, the request redelivered, and the stale ack never sent', async (t) => {
    await broker.ctl(
      'eval',
      'application:set_env(rabbit, consumer_timeout, 2000), application:set_env(rabbit, channel_tick_interval, 1000).',
    );
    t.after(() =>
      broker
        .ctl('eval', 'application:set_env(rabbit, consumer_timeout, 1800000).')
        .then(() => undefined),
    );
    const server = await open(t);
    const caller = await open(t);
    const queue = uniqueQueue('consumer-timeout');
    const runs: Array<{ redelivered: boolean; abortedWith?: unknown }> = [];
    const firstDone = deferred();
    const rpcServer = await server.serve(queue, async (request: string, ctx) => {
      const run: { redelivered: boolean; abortedWith?: unknown } = { redelivered: ctx.redelivered };
      runs.push(run);
      if (runs.length === 1) {
        ctx.signal.addEventListener('abort', () => {
          run.abortedWith = ctx.signal.reason;
        });
        // Slower than the consumer timeout, and deaf to the abort: it still returns.
        await new Promise((resolve) => setTimeout(resolve, 5000));
        firstDone.resolve();
        return 'stale';
      }
      return `${request} again`;
    });
    const started = Date.now();
    assert.equal(await caller.call(queue, 'slow', { timeoutMs: 20_000 }), 'slow again');
    t.diagnostic(`answered by the redelivery after ${Date.now() - started} ms`);
    assert.equal(runs[1]?.redelivered, true);
    assertCode(runs[0]?.abortedWith, 'UNAVAILABLE');
    assert.equal(rpcServer.stats.recoveries, 1);
    // The first run finishes on a dead channel: nothing is sent, above all no ack of its
    // old delivery tag on the new channel (the broker would close it: a second recovery).
    await firstDone.promise;
    assert.equal(await caller.call(queue, 'after', { timeoutMs: 5000 }), 'after again');
    assert.equal(rpcServer.stats.recoveries, 1);
    assert.equal(caller.stats().unmatchedReplies, 0);
  });
});
