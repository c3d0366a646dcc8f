/**
 * Idempotent calls across connection faults: a call cut off by a lost connection is
 * published again after the reconnect under the same id, and the server answers it from
 * its deduplication cache (the handler runs once). A request redelivered after its reply
 * was published gets the cached reply. One private broker for the file; the side under
 * test connects through a FaultProxy, the other side directly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type RpcConnection } from '../../src/index.js';
import { FaultProxy, startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';
import { assertCode, eventually, FAST_RECONNECT, settle, waitForState } from './fault-helpers.js';

failOnUnhandled();

const CALL_TIMEOUT_MS = 20_000;

let broker: PrivateBroker;
before(async () => {
  broker = await startPrivateBroker();
});
after(() => broker.close());

/** Connects (reconnect on, fast) and closes when the test ends. */
async function open(
  t: { after: (fn: () => Promise<void>) => void },
  url = broker.url,
): Promise<RpcConnection> {
  const rpc = await connect({ url, reconnect: FAST_RECONNECT });
  t.after(() => rpc.close());
  return rpc;
}

/**
 * Serves `queue` with a handler that counts its runs and holds its first run until
 * `release()`; returns the server and the controls.
 */
async function serveHeld(rpc: RpcConnection, queue: string) {
  const started = deferred();
  const released = deferred();
  const state = { runs: 0 };
  const server = await rpc.serve(queue, async (request: string) => {
    const run = ++state.runs;
    if (run === 1) {
      started.resolve();
      await released.promise;
    }
    return `${request}: run ${run}`;
  });
  return { server, state, started: started.promise, release: () => released.resolve() };
}

describe("the caller's connection drops while an idempotent call is pending", () => {
  test('the retry joins the first run, still going: the handler runs once', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const caller = await open(t, proxy.url(broker.url));
    const serving = await open(t);
    const queue = uniqueQueue('idem-join');
    const held = await serveHeld(serving, queue);

    const call = settle(
      caller.call<string>(queue, 'job', { timeoutMs: CALL_TIMEOUT_MS, idempotent: true }),
    );
    await held.started;
    const cutAt = Date.now();
    proxy.resetAll();
    // After the reconnect the retry arrives and waits for the first run.
    await eventually(() => held.server.stats.active === 2, 'the retry at the server');
    t.diagnostic(`the retry reached the server ${Date.now() - cutAt} ms after the cut`);
    held.release();
    const result = await call;
    assert.equal(result.error, undefined);
    assert.equal(result.value, 'job: run 1');
    assert.equal(held.state.runs, 1);
    assert.equal(held.server.stats.deduplicated, 1);
    const stats = caller.stats();
    assert.ok(stats.retries >= 1, `${stats.retries} retries`);
    assert.equal(stats.reconnects, 1);
    assert.equal(stats.pending, 0);
    assert.deepEqual(stats.errors, {});
    await caller.close(); // before the proxy closes under it
  });

  test('the first run completed, its reply lost with the connection: the retry gets the cached reply', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const caller = await open(t, proxy.url(broker.url));
    const serving = await open(t);
    const queue = uniqueQueue('idem-cached');
    const held = await serveHeld(serving, queue);

    const call = settle(
      caller.call<string>(queue, 'job', { timeoutMs: CALL_TIMEOUT_MS, idempotent: true }),
    );
    await held.started;
    // The reply will reach the caller's connection at the broker, and go no further.
    proxy.blackhole();
    held.release();
    await eventually(() => held.server.stats.replied === 1, 'the first reply');
    const cutAt = Date.now();
    proxy.resetAll();
    proxy.pass();
    const result = await call;
    t.diagnostic(`resolved ${result.at - cutAt} ms after the cut`);
    assert.equal(result.error, undefined);
    assert.equal(result.value, 'job: run 1');
    assert.equal(held.state.runs, 1);
    assert.equal(held.server.stats.deduplicated, 1);
    assert.ok(caller.stats().retries >= 1);
    await caller.close(); // before the proxy closes under it
  });

  test('a call not marked idempotent rejects UNAVAILABLE at once, as before', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const caller = await open(t, proxy.url(broker.url));
    const serving = await open(t);
    const queue = uniqueQueue('idem-plain');
    const held = await serveHeld(serving, queue);

    const call = settle(caller.call<string>(queue, 'job', { timeoutMs: CALL_TIMEOUT_MS }));
    await held.started;
    const cutAt = Date.now();
    proxy.resetAll();
    const result = await call;
    assertCode(result.error, 'UNAVAILABLE');
    assert.ok(result.at - cutAt < 2_000, `rejected ${result.at - cutAt} ms after the cut`);
    held.release();
    await waitForState(caller, 'connected');
    assert.equal(caller.stats().retries, 0);
    assert.equal(held.state.runs, 1);
    await caller.close(); // before the proxy closes under it
  });

  test('without reconnect, an idempotent call rejects UNAVAILABLE at once: nothing to retry on', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const caller = await connect({ url: proxy.url(broker.url), reconnect: false });
    t.after(() => caller.close());
    const serving = await open(t);
    const queue = uniqueQueue('idem-no-reconnect');
    const held = await serveHeld(serving, queue);

    const call = settle(
      caller.call<string>(queue, 'job', { timeoutMs: CALL_TIMEOUT_MS, idempotent: true }),
    );
    await held.started;
    const cutAt = Date.now();
    proxy.resetAll();
    const result = await call;
    assertCode(result.error, 'UNAVAILABLE');
    assert.ok(result.at - cutAt < 2_000, `rejected ${result.at - cutAt} ms after the cut`);
    assert.equal(caller.stats().pending, 0);
    held.release();
  });
});

describe("the server's connection drops after it replied, before its ack reached the broker", () => {
  test('the redelivered request gets the cached reply; the handler does not run again', async (t) => {
    await using proxy = await FaultProxy.start(broker.url);
    const serving = await open(t, proxy.url(broker.url));
    const caller = await open(t);
    const queue = uniqueQueue('idem-redelivered');
    const held = await serveHeld(serving, queue);

    const call = settle(
      caller.call<string>(queue, 'job', { timeoutMs: CALL_TIMEOUT_MS, idempotent: true }),
    );
    await held.started;
    // The reply and the ack are written into the void: the broker sees neither.
    proxy.blackhole();
    held.release();
    await eventually(() => held.server.stats.replied === 1, 'the first reply');
    const cutAt = Date.now();
    proxy.resetAll();
    proxy.pass();
    const result = await call;
    t.diagnostic(`resolved ${result.at - cutAt} ms after the cut`);
    assert.equal(result.error, undefined);
    assert.equal(result.value, 'job: run 1');
    assert.equal(held.state.runs, 1);
    assert.equal(held.server.stats.deduplicated, 1, 'the redelivery was answered from the cache');
    assert.equal(held.server.stats.recoveries, 1);
    assert.equal(caller.stats().retries, 0, 'the caller saw no failure');
    await serving.close(); // before the proxy closes under it
  });
});
