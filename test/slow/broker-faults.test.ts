/**
 * Faults of the broker itself (scenarios 6-9, 11, 15, 17, 18 of docs/reliability.md): crash
 * and restart, graceful restart, a frozen VM, resource alarms (connection.blocked), channel
 * errors and size limits. One private broker for the file, killed and restarted by it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CONNECT_DEFAULTS, connect, type RpcConnection } from '../../src/index.js';
import { startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';
import {
  assertCode,
  eventually,
  FAST_RECONNECT,
  recordStates,
  rejectsWith,
  settle,
  waitForState,
} from '../faults/fault-helpers.js';

failOnUnhandled();

let broker: PrivateBroker;
before(async () => {
  broker = await startPrivateBroker();
});
after(() => broker.close());

type TestContext = { after: (fn: () => Promise<void>) => void };

async function open(t: TestContext, options: Parameters<typeof connect>[0] & object = {}) {
  const rpc = await connect({ url: broker.url, ...options });
  t.after(() => rpc.close());
  return rpc;
}

/**
 * Serves `queue` with an echo handler; a first delivery of 'hang' waits until the
 * connection drops (its redelivery answers).
 */
async function serveEcho(rpc: RpcConnection, queue: string, durable = false) {
  const hanging = deferred();
  const server = await rpc.serve(
    queue,
    async (request: string, ctx) => {
      if (request === 'hang' && !ctx.redelivered) {
        hanging.resolve();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      }
      return request;
    },
    { durable },
  );
  return { server, hanging: hanging.promise };
}

describe('the broker crashes (kill -9) and comes back (scenario 7)', () => {
  test('pending calls fail at once; calls made meanwhile wait within their deadline; service resumes', async (t) => {
    const serving = await open(t);
    const calling = await open(t);
    const states = recordStates(calling);
    const queue = uniqueQueue('crash');
    const { server, hanging } = await serveEcho(serving, queue, true);
    const pending = settle(calling.call(queue, 'hang', { timeoutMs: 30_000 }));
    await hanging;

    const killedAt = Date.now();
    await broker.kill();
    const lost = await pending;
    assertCode(lost.error, 'UNAVAILABLE');
    assert.ok(lost.at - killedAt < 2000, `pending call rejected after ${lost.at - killedAt} ms`);
    await waitForState(calling, 'reconnecting');
    // Made while the broker is down: one deadline passes during the outage, one does not.
    const shortStart = Date.now();
    const short = settle(calling.call(queue, 'short', { timeoutMs: 1000 }));
    const patient = settle(calling.call(queue, 'patient', { timeoutMs: 60_000 }));
    const shortResult = await short;
    assertCode(shortResult.error, 'DEADLINE_EXCEEDED');
    const shortTook = shortResult.at - shortStart;
    assert.ok(shortTook >= 990 && shortTook < 1300, `short call rejected after ${shortTook} ms`);

    await broker.restart();
    const restartedAt = Date.now();
    const patientResult = await patient;
    assert.equal(patientResult.value, 'patient');
    const firstCallMs = patientResult.at - restartedAt;
    t.diagnostic(
      `down ${restartedAt - killedAt} ms (restart ${broker.startupMs} ms); first call answered ${firstCallMs} ms after the broker was back`,
    );
    assert.ok(firstCallMs < 10_000, `first call ${firstCallMs} ms after the restart`);
    assert.equal(calling.state, 'connected');
    assert.equal(states.includes('closed'), false);
    await eventually(() => server.stats.recoveries === 1, 'the server to consume again');
    assert.equal(await calling.call(queue, 'again', { timeoutMs: 5000 }), 'again');
    assert.equal(calling.stats().reconnects, 1);
  });
});

describe('the broker restarts gracefully (scenario 6)', () => {
  test('both sides reconnect; the server declares its (transient) queue again', async (t) => {
    const serving = await open(t, { reconnect: FAST_RECONNECT });
    const calling = await open(t, { reconnect: FAST_RECONNECT });
    const queue = uniqueQueue('restart');
    const { server, hanging } = await serveEcho(serving, queue);
    const pending = settle(calling.call(queue, 'hang', { timeoutMs: 30_000 }));
    await hanging;
    const restart = broker.restart();
    assertCode((await pending).error, 'UNAVAILABLE');
    await restart;
    await Promise.all([waitForState(serving, 'connected'), waitForState(calling, 'connected')]);
    await eventually(() => server.stats.recoveries === 1, 'the server to declare and consume');
    assert.equal(await calling.call(queue, 'back', { timeoutMs: 5000 }), 'back');
  });
});

describe('a frozen broker (scenarios 8, 9)', () => {
  test('heartbeats detect it within about three intervals; the link comes back after a thaw', async (t) => {
    const rpc = await open(t, {
      heartbeatSec: 1,
      connectTimeoutMs: 2000,
      reconnect: FAST_RECONNECT,
    });
    const queue = uniqueQueue('frozen');
    const { hanging } = await serveEcho(rpc, queue);
    const pending = settle(rpc.call(queue, 'hang', { timeoutMs: 30_000 }));
    await hanging;
    const frozenAt = Date.now();
    broker.freeze();
    let thawed = false;
    t.after(async () => {
      if (!thawed) broker.thaw();
      await Promise.resolve();
    });
    const result = await pending;
    const took = result.at - frozenAt;
    t.diagnostic(`frozen broker detected after ${took} ms (heartbeat 1 s)`);
    assertCode(result.error, 'UNAVAILABLE');
    assert.ok(took < 3500, `detected after ${took} ms`);
    assert.equal(rpc.state, 'reconnecting');
    broker.thaw();
    thawed = true;
    await waitForState(rpc, 'connected');
    assert.equal(await rpc.call(queue, 'thawed', { timeoutMs: 5000 }), 'thawed');
  });

  test('connect() to a frozen broker gives up after connectTimeoutMs', async (t) => {
    broker.freeze();
    t.after(async () => {
      broker.thaw();
      await Promise.resolve();
    });
    const started = Date.now();
    await assert.rejects(
      connect({ url: broker.url, connectTimeoutMs: 1500 }),
      rejectsWith('UNAVAILABLE'),
    );
    const took = Date.now() - started;
    t.diagnostic(`connect() to a frozen broker failed after ${took} ms`);
    assert.ok(took >= 1450 && took < 2500, `took ${took} ms`);
  });

  test('heartbeats are on by default (10 s) and connect() has a bounded default timeout', async (t) => {
    assert.equal(CONNECT_DEFAULTS.connectTimeoutMs, 10_000);
    const rpc = await open(t, { connectionName: 'heartbeat-default' });
    assert.equal(rpc.state, 'connected');
    const listing = await broker.ctl('list_connections', 'client_properties', 'timeout', '--quiet');
    assert.match(listing, /heartbeat-default.*\t10$/m);
  });
});

describe('a resource alarm blocks publishers (scenario 11)', () => {
  const setAlarm = 'rabbit_alarm:set_alarm({{resource_limit, memory, node()}, []}).';
  const clearAlarm = 'rabbit_alarm:clear_alarm({resource_limit, memory, node()}).';

  test('blocked is visible; calls wait within their deadline and complete after unblock; servers keep consuming', async (t) => {
    const calling = await open(t);
    const serving = await open(t);
    const queue = uniqueQueue('blocked');
    // Requests queued before the alarm; the server starts consuming during it.
    const declare = await serving.serve(queue, () => 'unused');
    await declare.close();
    const early = [1, 2, 3].map((n) =>
      settle(calling.call<number>(queue, n, { timeoutMs: 20_000 })),
    );
    await eventually(() => calling.stats().pending === 3, 'the early calls to be sent');
    const callingStates = recordStates(calling);
    await broker.ctl('eval', setAlarm);
    let cleared = false;
    t.after(async () => {
      if (!cleared) await broker.ctl('eval', clearAlarm);
    });

    // The first publish during the alarm makes the broker block the connection.
    const patient = settle(calling.call<number>(queue, 4, { timeoutMs: 20_000 }));
    await waitForState(calling, 'blocked');
    const shortStart = Date.now();
    const short = await settle(calling.call(queue, 5, { timeoutMs: 800 }));
    assertCode(short.error, 'DEADLINE_EXCEEDED');
    const shortTook = short.at - shortStart;
    assert.ok(shortTook >= 790 && shortTook < 1200, `short call rejected after ${shortTook} ms`);

    // A server can still consume while publishers are blocked.
    const handled: number[] = [];
    const allHandled = deferred();
    await serving.serve(queue, (n: number) => {
      handled.push(n);
      if (handled.length === 3) allHandled.resolve();
      return n * 10;
    });
    await allHandled.promise;
    assert.deepEqual(handled.sort(), [1, 2, 3]);

    await broker.ctl('eval', clearAlarm);
    cleared = true;
    await waitForState(calling, 'connected');
    const results = await Promise.all([...early, patient]);
    assert.deepEqual(
      results.map((r) => r.value),
      [10, 20, 30, 40],
    );
    assert.deepEqual(callingStates, ['blocked', 'connected']);
    assert.equal(await calling.call(queue, 6, { timeoutMs: 5000 }), 60);
  });
});

describe('channel errors and limits (scenarios 15, 17, 18)', () => {
  test('a call to a queue nobody declared fails fast with UNAVAILABLE', async (t) => {
    const rpc = await open(t);
    const started = Date.now();
    await assert.rejects(
      rpc.call(uniqueQueue('nobody'), 1, { timeoutMs: 30_000 }),
      rejectsWith('UNAVAILABLE'),
    );
    assert.ok(Date.now() - started < 1000);
  });

  test('serve() on a queue declared with other arguments: FAILED_PRECONDITION, the connection lives on', async (t) => {
    const rpc = await open(t);
    const queue = uniqueQueue('inequivalent');
    await rpc.serve(queue, (n: number) => n, { durable: true });
    const pending = settle(rpc.call(queue, 7, { timeoutMs: 5000 }));
    await assert.rejects(
      rpc.serve(queue, (n: number) => n, { durable: false }),
      rejectsWith('FAILED_PRECONDITION'),
    );
    assert.equal((await pending).value, 7, 'a call in flight was harmed');
    assert.equal(rpc.state, 'connected');
    assert.equal(await rpc.call(queue, 8, { timeoutMs: 5000 }), 8);
    assert.equal(rpc.stats().servers.length, 1);
  });

  test('a request over maxPayloadBytes fails locally with RESOURCE_EXHAUSTED; nothing is sent', async (t) => {
    const rpc = await open(t, { maxPayloadBytes: 1024 * 1024 });
    const queue = uniqueQueue('big-request');
    let runs = 0;
    await rpc.serve(queue, () => ++runs);
    await assert.rejects(
      rpc.call(queue, new Uint8Array(2 * 1024 * 1024), { timeoutMs: 5000 }),
      rejectsWith('RESOURCE_EXHAUSTED'),
    );
    assert.equal(await rpc.call(queue, 'small', { timeoutMs: 5000 }), 1);
  });

  test('a reply over maxPayloadBytes becomes a RESOURCE_EXHAUSTED error reply, once', async (t) => {
    const rpc = await open(t, { maxPayloadBytes: 1024 * 1024 });
    const queue = uniqueQueue('big-reply');
    let runs = 0;
    await rpc.serve(queue, () => {
      runs++;
      return new Uint8Array(2 * 1024 * 1024);
    });
    await assert.rejects(
      rpc.call(queue, 1, { timeoutMs: 5000 }),
      rejectsWith('RESOURCE_EXHAUSTED'),
    );
    assert.equal(runs, 1);
  });

  test('a request over the broker max_message_size: the call fails at once and the channel reopens', async (t) => {
    await broker.ctl('eval', 'application:set_env(rabbit, max_message_size, 1048576).');
    t.after(() =>
      broker
        .ctl('eval', 'application:set_env(rabbit, max_message_size, 134217728).')
        .then(() => undefined),
    );
    // The broker applies the limit to channels opened from now on.
    const rpc = await open(t);
    const queue = uniqueQueue('broker-limit');
    await rpc.serve(queue, (request: unknown) => (typeof request === 'string' ? request : 'big'));
    // A call already waiting for its reply is not concerned by the channel error.
    const slowStarted = Date.now();
    const waiting = rpc.call(queue, 'waiting', { timeoutMs: 10_000 });
    const started = Date.now();
    const big = await settle(
      rpc.call(queue, new Uint8Array(2 * 1024 * 1024), { timeoutMs: 10_000 }),
    );
    assert.equal(await waiting, 'waiting');
    assert.ok(Date.now() - slowStarted < 5000);
    assert.ok(big.error !== undefined, 'the oversize request was accepted');
    t.diagnostic(
      `oversize request rejected with ${assertCode(big.error, 'RESOURCE_EXHAUSTED').code} after ${big.at - started} ms`,
    );
    assert.ok(big.at - started < 2000);
    assert.equal(await rpc.call(queue, 'small', { timeoutMs: 5000 }), 'small');
    assert.equal(rpc.state, 'connected');
    // The caller learnt the broker's limit: the next oversize request fails locally, and no
    // call in flight pays for it.
    const inFlight = rpc.call(queue, 'bystander', { timeoutMs: 5000 });
    await assert.rejects(
      rpc.call(queue, new Uint8Array(2 * 1024 * 1024)),
      rejectsWith('RESOURCE_EXHAUSTED'),
    );
    assert.equal(await inFlight, 'bystander');
  });

  test('a reply over the broker max_message_size: one retry, then RESOURCE_EXHAUSTED, no loop', async (t) => {
    await broker.ctl('eval', 'application:set_env(rabbit, max_message_size, 1048576).');
    t.after(() =>
      broker
        .ctl('eval', 'application:set_env(rabbit, max_message_size, 134217728).')
        .then(() => undefined),
    );
    const server = await open(t);
    const client = await open(t);
    const queue = uniqueQueue('broker-limit-reply');
    let runs = 0;
    await server.serve(queue, () => {
      runs++;
      return new Uint8Array(2 * 1024 * 1024);
    });
    await assert.rejects(
      client.call(queue, 1, { timeoutMs: 10_000 }),
      rejectsWith('RESOURCE_EXHAUSTED'),
    );
    // The first reply closed the server's channel; the redelivery got the error reply.
    assert.equal(runs, 2);
    assert.equal(server.stats().servers[0]?.recoveries, 1);
  });
});
