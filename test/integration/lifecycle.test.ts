import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, RpcError } from '../../src/index.js';
import { AMQP_URL, connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

describe('server.close()', () => {
  test('stops taking requests, finishes those in flight, then resolves', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('drain');
    const started = deferred();
    const release = deferred();
    // prefetch 1: the second request cannot be delivered while the first one runs.
    const server = await rpc.serve(
      queue,
      async (request) => {
        started.resolve();
        await release.promise;
        return `done ${String(request)}`;
      },
      { prefetch: 1 },
    );
    const inFlight = rpc.call(queue, 1);
    await started.promise;
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    // Sent after close() began: nobody consumes it now, so it waits in the queue.
    const queued = rpc.call(queue, 2, { timeoutMs: 10_000 });
    assert.equal(closed, false);
    release.resolve();
    assert.equal(await inFlight, 'done 1');
    await closing;
    assert.equal(server.stats.active, 0);
    // A new server picks up what the closed one left in the queue.
    await rpc.serve(queue, (request) => `second ${String(request)}`);
    assert.equal(await queued, 'second 2');
    assert.equal(server.close(), server.close(), 'idempotent');
  });

  test('after drainTimeoutMs, ctx.signal aborts and the request goes back to the queue', async () => {
    const serverSide = await connectForTest();
    const clientSide = await connectForTest();
    const queue = uniqueQueue('drain-timeout');
    const started = deferred();
    const abortReason = deferred<unknown>();
    const stubborn = await serverSide.serve(
      queue,
      (_request, ctx) => {
        ctx.signal.addEventListener('abort', () => abortReason.resolve(ctx.signal.reason));
        started.resolve();
        return new Promise(() => undefined); // never finishes
      },
      { drainTimeoutMs: 100 },
    );
    const call = clientSide.call(queue, 'work', { timeoutMs: 10_000 });
    await started.promise;
    await stubborn.close();
    const reason = await abortReason.promise;
    assert.ok(reason instanceof RpcError);
    assert.equal(reason.code, 'CANCELLED');
    const redelivered = deferred<boolean>();
    await serverSide.serve(queue, (_request, ctx) => {
      redelivered.resolve(ctx.redelivered);
      return 'rescued';
    });
    assert.equal(await call, 'rescued');
    assert.equal(await redelivered.promise, true);
  });
});

describe('rpc.close()', () => {
  test('is idempotent, rejects pending calls with CANCELLED and later calls at once', async () => {
    const serverSide = await connectForTest();
    const queue = uniqueQueue('close');
    const started = deferred();
    await serverSide.serve(
      queue,
      () => {
        started.resolve();
        return new Promise(() => undefined);
      },
      { drainTimeoutMs: 50 },
    );
    const rpc = await connect(AMQP_URL);
    const pending = assert.rejects(rpc.call(queue, null, { timeoutMs: 10_000 }), {
      code: 'CANCELLED',
    });
    await started.promise;
    const first = rpc.close();
    assert.equal(rpc.close(), first);
    await first;
    await pending;
    assert.equal(rpc.state, 'closed');
    assert.equal(rpc.stats().pending, 0);
    assert.equal(await rpc.closed, undefined);
    await assert.rejects(rpc.call(queue, null), { code: 'FAILED_PRECONDITION' });
    await assert.rejects(
      rpc.serve(uniqueQueue('late'), () => null),
      { code: 'FAILED_PRECONDITION' },
    );
  });

  test('closes its servers gracefully first', async () => {
    const rpc = await connect(AMQP_URL);
    const client = await connectForTest();
    const queue = uniqueQueue('close-servers');
    const started = deferred();
    const release = deferred();
    await rpc.serve(queue, async () => {
      started.resolve();
      await release.promise;
      return 'finished';
    });
    const call = client.call(queue, null);
    await started.promise;
    const closing = rpc.close();
    release.resolve();
    assert.equal(await call, 'finished');
    await closing;
  });

  test('await using closes the connection and the server', async () => {
    const queue = uniqueQueue('using');
    let rpcRef: { state: string } | undefined;
    {
      await using rpc = await connect(AMQP_URL);
      await using server = await rpc.serve(queue, () => 'ok');
      rpcRef = rpc;
      assert.equal(await rpc.call(queue, null), 'ok');
      assert.equal(server.queue, queue);
    }
    assert.equal(rpcRef.state, 'closed');
  });
});

describe('connect()', () => {
  test('wrong credentials: UNAUTHENTICATED, and the password is not in the message', async () => {
    const url = new URL(AMQP_URL);
    url.username = 'nobody';
    url.password = 'sekret-pw';
    await assert.rejects(connect(url.toString()), (error: RpcError) => {
      assert.equal(error.code, 'UNAUTHENTICATED');
      assert.ok(!error.message.includes('sekret-pw'));
      return true;
    });
  });

  test('a vhost the user may not use: PERMISSION_DENIED', async () => {
    const url = new URL(AMQP_URL);
    url.pathname = '/no-such-vhost';
    await assert.rejects(connect(url.toString()), { code: 'PERMISSION_DENIED' });
  });

  test('nothing listening: UNAVAILABLE; several URLs are tried in turn', async () => {
    await assert.rejects(connect('amqp://guest:guest@127.0.0.1:1'), { code: 'UNAVAILABLE' });
    const rpc = await connect({ url: ['amqp://guest:guest@127.0.0.1:1', AMQP_URL] });
    assert.equal(rpc.state, 'connected');
    await rpc.close();
  });

  test('wrong URLs and options: INVALID_ARGUMENT before any connection', async () => {
    await assert.rejects(connect('http://localhost:5672'), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(connect('localhost'), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(connect({ url: AMQP_URL, heartbeatSec: -1 }), {
      code: 'INVALID_ARGUMENT',
    });
  });

  test('an aborted signal cancels connect()', async () => {
    await assert.rejects(connect({ url: AMQP_URL, signal: AbortSignal.abort() }), {
      code: 'CANCELLED',
    });
  });
});
