/**
 * The connection drops while calls are pending: they must reject promptly with UNAVAILABLE,
 * not at their timeout. Runs against a private broker (never the system one) with an
 * in-process fault proxy between the library and the broker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, RpcError, type HandlerContext, type RpcConnection } from '../../src/index.js';
import { FaultProxy, startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { deferred, uniqueQueue } from '../helpers.js';
import { eventually, recordStates, settle, waitForState } from './fault-helpers.js';

/** Generous against the 30 s call timeout, strict enough to prove the loss was noticed. */
const PROMPT_MS = 2000;
/**
 * The same when the cut is made by rabbitmqctl, whose own start (an Erlang VM) counts: about
 * 1 s on a quiet machine, 3 s on a loaded one. Still far below the call timeout.
 */
const PROMPT_VIA_CTL_MS = 6000;
const CALL_TIMEOUT_MS = 30_000;
const fileStarted = Date.now();

let broker: PrivateBroker;
before(async () => {
  broker = await startPrivateBroker();
});
after(() => broker.close());

/**
 * Serves `queue` with a handler that never answers: it waits for its `ctx.signal` and
 * records why it aborted. `allStarted` resolves once `count` handlers run.
 */
async function serveHanging(rpc: RpcConnection, queue: string, count: number) {
  const contexts: HandlerContext[] = [];
  const allStarted = deferred();
  const aborted: Promise<unknown>[] = [];
  const server = await rpc.serve(
    queue,
    async (_request: unknown, ctx) => {
      contexts.push(ctx);
      const reason = new Promise<unknown>((resolve) => {
        ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), { once: true });
      });
      aborted.push(reason);
      if (contexts.length === count) allStarted.resolve();
      await reason;
      return 'too late';
    },
    { prefetch: count },
  );
  return { server, contexts, allStarted: allStarted.promise, aborted };
}

/** Starts `count` calls and records when and how each one settles. */
function startCalls(rpc: RpcConnection, queue: string, count: number) {
  return Array.from({ length: count }, (_, i) =>
    rpc.call(queue, i, { timeoutMs: CALL_TIMEOUT_MS }).then(
      (value: unknown) => ({ value, error: undefined, at: Date.now() }),
      (error: unknown) => ({ value: undefined, error, at: Date.now() }),
    ),
  );
}

function assertUnavailable(error: unknown): void {
  assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
  assert.equal(error.code, 'UNAVAILABLE');
}

describe('connection loss while calls are pending', () => {
  for (const how of [
    'reset by the network (TCP RST)',
    'closed by the broker (close_all_connections)',
  ] as const) {
    test(`${how}: pending calls reject UNAVAILABLE at once, handlers are aborted`, async (t) => {
      await using proxy = await FaultProxy.start(broker.url);
      // reconnect: false: this test is about the end of the connection; see below for reconnect.
      const rpc = await connect({ url: proxy.url(broker.url), reconnect: false });
      t.after(() => rpc.close());
      const queue = uniqueQueue('loss');
      const count = 5;
      const hanging = await serveHanging(rpc, queue, count);
      const calls = startCalls(rpc, queue, count);
      await hanging.allStarted;
      assert.equal(rpc.stats().pending, count);

      const cutAt = Date.now();
      if (how.startsWith('reset')) proxy.resetAll();
      else await broker.closeAllConnections('connection-loss test');
      const results = await Promise.all(calls);
      const lostError = await rpc.closed;

      const prompt = how.startsWith('reset') ? PROMPT_MS : PROMPT_VIA_CTL_MS;
      for (const result of results) {
        assertUnavailable(result.error);
        assert.ok(result.at - cutAt < prompt, `a call took ${result.at - cutAt} ms to reject`);
      }
      t.diagnostic(
        `slowest rejection ${Math.max(...results.map((r) => r.at - cutAt))} ms after the cut`,
      );
      assertUnavailable(lostError);
      assert.equal(rpc.state, 'closed');
      assert.equal(rpc.stats().pending, 0);
      // No reconnect is coming: the server has stopped for good, and says why.
      assertUnavailable(await hanging.server.closed);
      assert.deepEqual(rpc.stats().servers, []);

      // The server side noticed too: every running handler's signal aborted with UNAVAILABLE.
      const reasons = await Promise.all(hanging.aborted);
      assert.equal(reasons.length, count);
      for (const reason of reasons) assertUnavailable(reason);

      // Calls after the loss fail at once, without waiting for their timeout.
      const lateStarted = Date.now();
      await assert.rejects(
        rpc.call(queue, 'late', { timeoutMs: CALL_TIMEOUT_MS }),
        (error: unknown) => {
          assertUnavailable(error);
          return true;
        },
      );
      assert.ok(Date.now() - lateStarted < 100, 'a call after the loss did not fail at once');
      await assert.rejects(
        rpc.serve(uniqueQueue('after-loss'), () => 1),
        (error: unknown) => {
          assertUnavailable(error);
          return true;
        },
      );
    });
  }

  test('a black-holed connection is detected by heartbeats (heartbeatSec: 1)', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const rpc = await connect({ url: proxy.url(broker.url), heartbeatSec: 1, reconnect: false });
    t.after(() => rpc.close());
    const queue = uniqueQueue('blackhole');
    const count = 3;
    const hanging = await serveHanging(rpc, queue, count);
    const calls = startCalls(rpc, queue, count);
    await hanging.allStarted;

    const cutAt = Date.now();
    proxy.blackhole();
    const results = await Promise.all(calls);
    const took = Math.max(...results.map((r) => r.at - cutAt));
    t.diagnostic(`black hole detected after ${took} ms (heartbeat 1 s)`);
    for (const result of results) assertUnavailable(result.error);
    // Heartbeat timeouts are coarse: allow about 4 intervals plus scheduling slack.
    assert.ok(took < 4500, `black hole noticed after ${took} ms`);
    assert.ok(took >= 500, `black hole noticed after only ${took} ms: not by heartbeat?`);
    assertUnavailable(await rpc.closed);
    assert.equal(rpc.stats().pending, 0);
    for (const reason of await Promise.all(hanging.aborted)) assertUnavailable(reason);
  });
});

describe('connection loss with reconnect on (the default)', () => {
  for (const how of ['reset', 'closed by the broker', 'black-holed'] as const) {
    test(`${how}: pending calls reject UNAVAILABLE at once, then the connection comes back`, async (t) => {
      await using proxy = await FaultProxy.start(broker.url);
      const rpc = await connect({
        url: proxy.url(broker.url),
        heartbeatSec: how === 'black-holed' ? 1 : 10,
        // The first retry may start inside the black hole; it must give up quickly.
        connectTimeoutMs: 2000,
      });
      t.after(() => rpc.close());
      const states = recordStates(rpc);
      const queue = uniqueQueue('reconnect');
      const count = 5;
      // First deliveries hang until the connection drops; redeliveries answer at once.
      const started = deferred();
      const redelivered = deferred();
      let firstDeliveries = 0;
      let redeliveries = 0;
      const aborted: Promise<unknown>[] = [];
      await rpc.serve(
        queue,
        async (request: unknown, ctx) => {
          if (ctx.redelivered) {
            if (++redeliveries === count) redelivered.resolve();
            return request;
          }
          if (firstDeliveries === count) return request;
          aborted.push(
            new Promise((resolve) => {
              ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), {
                once: true,
              });
            }),
          );
          if (++firstDeliveries === count) started.resolve();
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          return 'too late';
        },
        { prefetch: count },
      );
      const calls = startCalls(rpc, queue, count);
      await started.promise;

      const cutAt = Date.now();
      if (how === 'reset') proxy.resetAll();
      else if (how === 'closed by the broker') await broker.closeAllConnections('reconnect test');
      else proxy.blackhole();
      const results = await Promise.all(calls);
      const slowest = Math.max(...results.map((r) => r.at - cutAt));
      for (const result of results) assertUnavailable(result.error);
      const limit =
        how === 'black-holed'
          ? 4500
          : how === 'closed by the broker'
            ? PROMPT_VIA_CTL_MS
            : PROMPT_MS;
      assert.ok(slowest < limit, `a call took ${slowest} ms to reject`);
      for (const reason of await Promise.all(aborted)) assertUnavailable(reason);
      if (how === 'black-holed') proxy.pass();

      await waitForState(rpc, 'connected');
      const backAt = Date.now();
      assert.deepEqual(states.slice(0, 2), ['reconnecting', 'connected']);
      assert.equal(rpc.stats().reconnects, 1);
      // The server consumes again: the requests it held come back to it, marked redelivered,
      await redelivered.promise;
      // and a new call gets its answer through a new reply queue.
      assert.equal(await rpc.call(queue, 'after', { timeoutMs: 5000 }), 'after');
      assert.equal(rpc.stats().servers[0]?.recoveries, 1);
      assert.equal(rpc.stats().pending, 0);
      t.diagnostic(
        `${how}: calls rejected within ${slowest} ms; connected again ${backAt - cutAt} ms after the cut`,
      );
    });
  }
});

describe('close() on a dead link', () => {
  test('close() returns within about 2 s when the broker never answers close-ok', async () => {
    await using proxy = await FaultProxy.start(broker.url);
    const rpc = await connect({ url: proxy.url(broker.url), reconnect: false });
    await assert.rejects(rpc.call(uniqueQueue('close-dead'), 1), { code: 'UNAVAILABLE' });
    proxy.setMode('blackhole'); // the socket stays open, nothing gets through
    const started = Date.now();
    await rpc.close();
    const took = Date.now() - started;
    assert.ok(took < 5_000, `close() took ${took} ms`);
    assert.equal(rpc.state, 'closed');
  });
});

describe("replyMode 'expiring-queue': replies survive a short disconnect", () => {
  test('a reply sent while the caller is disconnected waits in the queue and arrives after', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const server = await connect(broker.url);
    t.after(() => server.close());
    const caller = await connect({
      url: proxy.url(broker.url),
      replyMode: 'expiring-queue',
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    t.after(() => caller.close());
    const queue = uniqueQueue('expiring-outage');
    const running = deferred();
    const release = deferred();
    const serving = await server.serve(queue, async (request: string) => {
      running.resolve();
      await release.promise;
      return request;
    });
    const call = caller.call(queue, 'during the outage', { timeoutMs: 20_000 });
    await running.promise;
    proxy.setMode('refuse'); // reconnect attempts fail until we say so
    proxy.resetAll();
    await waitForState(caller, 'reconnecting');
    release.resolve();
    await eventually(() => serving.stats.replied === 1, 'the server to reply');
    assert.equal(caller.state, 'reconnecting', 'the reply went out while the caller was away');
    proxy.setMode('pass');
    assert.equal(await call, 'during the outage');
  });

  test('without reconnect, a pending call fails UNAVAILABLE at once instead of waiting', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const server = await connect(broker.url);
    t.after(() => server.close());
    const caller = await connect({
      url: proxy.url(broker.url),
      replyMode: 'expiring-queue',
      reconnect: false,
    });
    t.after(() => caller.close());
    const queue = uniqueQueue('expiring-noreconnect');
    const running = deferred();
    await server.serve(
      queue,
      () => {
        running.resolve();
        return new Promise(() => undefined);
      },
      { drainTimeoutMs: 50 },
    );
    const call = settle(caller.call(queue, 'x', { timeoutMs: 20_000 }));
    await running.promise;
    const cutAt = Date.now();
    proxy.resetAll();
    const result = await call;
    assertUnavailable(result.error);
    assert.ok(result.at - cutAt < PROMPT_MS);
  });

  test('a call pending across a reconnect keeps waiting and resolves normally', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const server = await connect(broker.url);
    t.after(() => server.close());
    const caller = await connect({
      url: proxy.url(broker.url),
      replyMode: 'expiring-queue',
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    const states = recordStates(caller);
    const queue = uniqueQueue('expiring');
    const running = deferred();
    const release = deferred();
    await server.serve(queue, async (request: string) => {
      if (request === 'slow') {
        running.resolve();
        await release.promise;
      }
      return request;
    });
    assert.equal(await caller.call(queue, 'warm-up', { timeoutMs: 5000 }), 'warm-up');
    const call = caller.call(queue, 'slow', { timeoutMs: 20_000 });
    await running.promise;
    const cutAt = Date.now();
    proxy.resetAll();
    await eventually(() => states.includes('connected'), 'the caller to reconnect');
    // Answered only now, so the reply cannot go to the dead connection's consumer (replies
    // in flight at the cut can: see docs/reliability.md, "Not covered yet").
    release.resolve();
    assert.equal(await call, 'slow');
    t.diagnostic(`resolved ${Date.now() - cutAt} ms after the cut, states ${states.join(' > ')}`);
    assert.deepEqual(states.slice(0, 2), ['reconnecting', 'connected']);
    assert.equal(caller.stats().unmatchedReplies, 0);
    assert.equal(caller.stats().pending, 0);
    const replyQueues = async () =>
      (await broker.ctl('list_queues', 'name', '--quiet'))
        .split('\n')
        .filter((name) => name.startsWith('rpc.reply.'));
    const before = await replyQueues();
    assert.ok(before.length > 0);
    // close() deletes the reply queue rather than leaving it to expire (other tests' callers
    // that lost their connection for good leave theirs to x-expires).
    await caller.close();
    const after = await replyQueues();
    assert.equal(after.length, before.length - 1);
  });
});

describe('connect() when the broker cannot be reached', () => {
  test('a refused connection fails fast with UNAVAILABLE', async () => {
    await using proxy = await FaultProxy.start(broker.url);
    proxy.refuse();
    const started = Date.now();
    await assert.rejects(
      connect({ url: proxy.url(broker.url), connectTimeoutMs: 10_000 }),
      (error: unknown) => {
        assertUnavailable(error);
        return true;
      },
    );
    const took = Date.now() - started;
    assert.ok(took < 1000, `refused connect took ${took} ms`);
    assert.equal(proxy.accepted, 1);
  });

  test('a black-holed connect fails with UNAVAILABLE after connectTimeoutMs', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    proxy.blackhole();
    const started = Date.now();
    await assert.rejects(
      connect({ url: proxy.url(broker.url), connectTimeoutMs: 1000 }),
      (error: unknown) => {
        assertUnavailable(error);
        return true;
      },
    );
    const took = Date.now() - started;
    t.diagnostic(`black-holed connect gave up after ${took} ms`);
    assert.ok(took >= 950 && took < 2500, `black-holed connect took ${took} ms`);
    // The half-open attempt was dropped, not leaked (this hangs until the test times out otherwise).
    await proxy.idle();
    assert.equal(proxy.connections, 0);
  });
});

describe('a server loses its connection mid-request', () => {
  test('the request is redelivered to another server and the caller gets exactly one reply', async () => {
    const queue = uniqueQueue('redeliver');
    await using proxy = await FaultProxy.start(broker.url);
    // Server A goes through the proxy; the caller and server B connect directly.
    // Server A must not come back (reconnect: false), so only server B can take the request.
    const serverConn = await connect({ url: proxy.url(broker.url), reconnect: false });
    const callerConn = await connect(broker.url);
    const backupConn = await connect(broker.url);
    try {
      const gotRequest = deferred<HandlerContext>();
      const aAborted = deferred<unknown>();
      await serverConn.serve(queue, async (_request: string, ctx) => {
        gotRequest.resolve(ctx);
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener(
            'abort',
            () => {
              aAborted.resolve(ctx.signal.reason);
              resolve();
            },
            { once: true },
          );
        });
        return 'from A (must not arrive)';
      });
      const call = callerConn.call<string>(queue, 'job', { timeoutMs: CALL_TIMEOUT_MS });
      const firstDelivery = await gotRequest.promise;
      assert.equal(firstDelivery.redelivered, false);

      proxy.resetAll();
      assertUnavailable(await aAborted.promise);
      assertUnavailable(await serverConn.closed);

      const seenByB: boolean[] = [];
      await backupConn.serve(queue, (request: string, ctx) => {
        seenByB.push(ctx.redelivered);
        return `B handled ${request}`;
      });
      assert.equal(await call, 'B handled job');
      assert.deepEqual(seenByB, [true]);

      // One more round trip on the same queue: had a second reply to the first call been
      // in flight, it would have arrived by now and been counted as unmatched.
      assert.equal(await callerConn.call(queue, 'ping', { timeoutMs: 5000 }), 'B handled ping');
      assert.equal(callerConn.stats().pending, 0);
      assert.equal(callerConn.stats().unmatchedReplies, 0);
      assert.equal(callerConn.state, 'connected');
    } finally {
      await Promise.all([serverConn.close(), callerConn.close(), backupConn.close()]);
    }
  });
});

after(() => {
  process.stdout.write(
    `faults/connection-loss.test.ts took ${Date.now() - fileStarted} ms (broker included)\n`,
  );
});
