/**
 * Closing, connection loss, reconnects, flow control and refused logins, through the
 * in-memory broker (test/integration/lifecycle.test.ts and test/faults do the same against
 * RabbitMQ).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, RpcError, type HandlerContext } from '../../src/index.js';
import { MemoryBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled } from '../helpers.js';
import { code, connectMemory, setup, settleBroker, stateBecomes } from './memory-helpers.js';

failOnUnhandled();

describe('server.close()', () => {
  test('stops taking requests, finishes those in flight, then resolves', async () => {
    const { broker, rpc } = await setup();
    const started = deferred();
    const release = deferred();
    const server = await rpc.serve(
      'drain',
      async (request) => {
        started.resolve();
        await release.promise;
        return `done ${String(request)}`;
      },
      { prefetch: 1 },
    );
    const inFlight = rpc.call('drain', 1);
    await started.promise;
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    const queued = rpc.call('drain', 2, { timeoutMs: 10_000 });
    await settleBroker();
    assert.equal(closed, false);
    assert.equal(broker.queue('drain')?.consumerCount, 0);
    assert.equal(broker.queue('drain')?.messageCount, 1, 'waits in the queue');
    release.resolve();
    assert.equal(await inFlight, 'done 1');
    await closing;
    assert.equal(server.stats.active, 0);
    await rpc.serve('drain', (request) => `second ${String(request)}`);
    assert.equal(await queued, 'second 2');
    assert.equal(server.close(), server.close(), 'idempotent');
  });

  test('after drainTimeoutMs, ctx.signal aborts and the request is redelivered', async () => {
    const { broker, rpc: serverSide } = await setup();
    const clientSide = await connectMemory(broker);
    const started = deferred();
    const abortReason = deferred<unknown>();
    const stubborn = await serverSide.serve(
      'drain-timeout',
      (_request, ctx) => {
        ctx.signal.addEventListener('abort', () => abortReason.resolve(ctx.signal.reason));
        started.resolve();
        return new Promise(() => undefined);
      },
      { drainTimeoutMs: 30 },
    );
    const call = clientSide.call('drain-timeout', 'work', { timeoutMs: 10_000 });
    await started.promise;
    const closeStarted = performance.now();
    await stubborn.close();
    assert.ok(performance.now() - closeStarted >= 25, 'waited for drainTimeoutMs');
    const reason = await abortReason.promise;
    assert.ok(reason instanceof RpcError);
    assert.equal(reason.code, 'CANCELLED');
    assert.equal(broker.queue('drain-timeout')?.messageCount, 1, 'requeued');
    const redelivered = deferred<boolean>();
    await serverSide.serve('drain-timeout', (_request, ctx) => {
      redelivered.resolve(ctx.redelivered);
      return 'rescued';
    });
    assert.equal(await call, 'rescued');
    assert.equal(await redelivered.promise, true);
  });
});

describe('rpc.close()', () => {
  test('is idempotent, rejects pending calls with CANCELLED and later calls at once', async () => {
    const broker = new MemoryBroker();
    const serverSide = await connectMemory(broker);
    const started = deferred();
    await serverSide.serve(
      'close',
      () => {
        started.resolve();
        return new Promise(() => undefined);
      },
      { drainTimeoutMs: 10 },
    );
    const rpc = await connect({ url: 'amqp://memory', transport: broker.transport });
    const pending = assert.rejects(
      rpc.call('close', null, { timeoutMs: 10_000 }),
      code('CANCELLED'),
    );
    await started.promise;
    const first = rpc.close();
    assert.equal(rpc.close(), first);
    await first;
    await pending;
    assert.equal(rpc.state, 'closed');
    assert.equal(rpc.stats().pending, 0);
    assert.equal(await rpc.closed, undefined);
    assert.equal(broker.connectionCount, 1, 'only the server side is left');
    await assert.rejects(rpc.call('close', null), code('FAILED_PRECONDITION'));
    await assert.rejects(
      rpc.serve('late', () => null),
      code('FAILED_PRECONDITION'),
    );
  });

  test('closes its servers gracefully first, and removes its reply queue', async () => {
    const broker = new MemoryBroker();
    const rpc = await connect({ url: 'amqp://memory', transport: broker.transport });
    const client = await connectMemory(broker, { replyMode: 'expiring-queue' });
    const started = deferred();
    const release = deferred();
    await rpc.serve('close-servers', async () => {
      started.resolve();
      await release.promise;
      return 'finished';
    });
    const call = client.call('close-servers', null);
    await started.promise;
    const closing = rpc.close();
    release.resolve();
    assert.equal(await call, 'finished');
    await closing;
    assert.equal(broker.queueNames().length, 2, 'the service queue and the expiring reply queue');
    await client.close();
    assert.deepEqual(broker.queueNames(), ['close-servers']);
  });
});

describe('connection loss and reconnects (disconnectAll)', () => {
  test("'queue' reply mode: pending calls reject UNAVAILABLE at once, then all comes back", async () => {
    const { broker, rpc } = await setup();
    const aborted = deferred<unknown>();
    let first = true;
    await rpc.serve('loss', (_request, ctx) => {
      if (!first) return 'after';
      first = false;
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          aborted.resolve(ctx.signal.reason);
          reject(ctx.signal.reason as Error);
        });
      });
    });
    const states: string[] = [];
    rpc.onStateChange((state) => states.push(state));
    const call = rpc.call('loss', null, { timeoutMs: 10_000 });
    await settleBroker();
    const lost = performance.now();
    broker.disconnectAll();
    await assert.rejects(call, code('UNAVAILABLE'));
    assert.ok(performance.now() - lost < 100);
    const reason = await aborted.promise;
    assert.ok(reason instanceof RpcError && reason.code === 'UNAVAILABLE');
    await stateBecomes(rpc, 'connected');
    assert.deepEqual(states, ['reconnecting', 'connected']);
    assert.equal(rpc.stats().reconnects, 1);
    // The request of the lost call was requeued; the server consumes again and answers it.
    assert.equal(await rpc.call('loss', null), 'after');
    assert.equal(rpc.stats().servers[0]?.recoveries, 1);
    assert.equal(broker.queue('loss')?.consumerCount, 1);
  });

  test("'expiring-queue' reply mode: calls keep waiting across the loss and get their replies", async () => {
    const broker = new MemoryBroker();
    const serverSide = await connectMemory(broker);
    const rpc = await connectMemory(broker, { replyMode: 'expiring-queue' });
    const contexts: HandlerContext[] = [];
    const firstStarted = deferred();
    await serverSide.serve('survive', (request, ctx) => {
      contexts.push(ctx);
      if (contexts.length === 1) {
        firstStarted.resolve();
        // Aborted by the loss: its reply could not be sent any more.
        return new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error));
        });
      }
      return `answered ${String(request)} redelivered=${String(ctx.redelivered)}`;
    });
    const call = rpc.call('survive', 'x', { timeoutMs: 10_000 });
    await firstStarted.promise;
    broker.disconnectAll();
    assert.equal(rpc.stats().pending, 1, 'still waiting');
    assert.equal(await call, 'answered x redelivered=true');
    assert.equal(contexts[0]?.signal.aborted, true);
    assert.equal(rpc.stats().reconnects, 1);
  });

  test('reconnect: false ends the connection for good with UNAVAILABLE', async () => {
    const { broker, rpc } = await setup({ reconnect: false });
    broker.disconnectAll();
    const ended = await rpc.closed;
    assert.equal(ended?.code, 'UNAVAILABLE');
    assert.equal(rpc.state, 'closed');
    await assert.rejects(rpc.call('any', null), code('UNAVAILABLE'));
  });

  test('a refused reconnect keeps trying while UNAVAILABLE, and stops on a refused login', async () => {
    const { broker, rpc } = await setup();
    broker.refuseConnections();
    broker.disconnectAll();
    await stateBecomes(rpc, 'reconnecting');
    // Calls made meanwhile wait for the connection, within their deadline.
    await assert.rejects(rpc.call('q', null, { timeoutMs: 40 }), code('DEADLINE_EXCEEDED'));
    assert.equal(rpc.state, 'reconnecting');
    broker.refuseConnections(
      new Error('connection closed: ACCESS_REFUSED - Login was refused (403)'),
    );
    const ended = await rpc.closed;
    assert.equal(ended?.code, 'UNAUTHENTICATED');
  });
});

describe('connect() refused', () => {
  test('a refused login is UNAUTHENTICATED, a refused vhost PERMISSION_DENIED, else UNAVAILABLE', async () => {
    const broker = new MemoryBroker();
    const open = () => connect({ url: 'amqp://u:secret@memory', transport: broker.transport });
    broker.refuseConnections(new Error('connection closed: ACCESS_REFUSED - Login refused (403)'));
    await assert.rejects(open(), (error: RpcError) => {
      assert.equal(error.code, 'UNAUTHENTICATED');
      assert.ok(!error.message.includes('secret'));
      return true;
    });
    broker.refuseConnections(
      new Error('connection closed: NOT_ALLOWED - vhost nope not found (530)'),
    );
    await assert.rejects(open(), code('PERMISSION_DENIED'));
    broker.refuseConnections();
    await assert.rejects(open(), code('UNAVAILABLE'));
    broker.acceptConnections();
    const rpc = await open();
    assert.equal(rpc.state, 'connected');
    await rpc.close();
    await broker.close();
    await assert.rejects(open(), code('UNAVAILABLE'));
  });
});

describe('flow control (connection.blocked)', () => {
  test("blocked: state 'blocked', calls wait within their deadline, then go through", async () => {
    const { broker, rpc } = await setup();
    let handled = 0;
    await rpc.serve('flow', () => ++handled);
    broker.block('low on memory');
    assert.equal(rpc.state, 'blocked');
    await assert.rejects(rpc.call('flow', null, { timeoutMs: 30 }), code('DEADLINE_EXCEEDED'));
    const waiting = rpc.call('flow', null, { timeoutMs: 10_000 });
    await settleBroker();
    assert.equal(handled, 0, 'nothing published while blocked');
    broker.unblock();
    assert.equal(rpc.state, 'connected');
    assert.equal(await waiting, 1);
    assert.equal(handled, 1, 'the expired call never reached the handler');
  });

  test('a connection opened during an alarm learns about it, and a reply waits for unblock', async () => {
    const broker = new MemoryBroker();
    const serverSide = await connectMemory(broker);
    const release = deferred();
    const started = deferred();
    await serverSide.serve('held', async () => {
      started.resolve();
      await release.promise;
      return 'held reply';
    });
    const client = await connectMemory(broker);
    const call = client.call('held', null, { timeoutMs: 10_000 });
    await started.promise;
    broker.block('disk');
    const late = await connectMemory(broker);
    await stateBecomes(late, 'blocked');
    release.resolve();
    await settleBroker();
    assert.equal(client.stats().pending, 1, 'the reply is held while blocked');
    broker.unblock();
    assert.equal(await call, 'held reply');
    assert.equal(late.state, 'connected');
  });
});
