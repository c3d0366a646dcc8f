import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RpcError } from '../../src/index.js';
import { connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

test('batched acks never settle a request that is still running', async () => {
  const first = await connectForTest();
  const second = await connectForTest();
  const client = await connectForTest();
  const queue = uniqueQueue('acks');
  const slowStarted = deferred();
  const server = await first.serve(
    queue,
    (request, ctx) => {
      if (request !== 'slow') return `fast ${String(request)}`;
      slowStarted.resolve();
      return new Promise((_, reject) => {
        ctx.signal.addEventListener('abort', () => reject(new RpcError('CANCELLED', 'closing')));
      });
    },
    { prefetch: 10, drainTimeoutMs: 50 },
  );
  const slow = client.call(queue, 'slow', { timeoutMs: 10_000 });
  await slowStarted.promise;
  // Later deliveries finish first; their acks must not cover the slow one.
  const fast = await Promise.all([1, 2, 3, 4, 5].map((i) => client.call(queue, i)));
  assert.deepEqual(fast, ['fast 1', 'fast 2', 'fast 3', 'fast 4', 'fast 5']);
  await server.close(); // the slow request was never acked: the broker requeues it
  const redelivered = deferred<boolean>();
  await second.serve(queue, (_request, ctx) => {
    redelivered.resolve(ctx.redelivered);
    return 'rescued';
  });
  assert.equal(await slow, 'rescued');
  assert.equal(await redelivered.promise, true);
});

test('a very long error message is shortened, and the error reply still arrives', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('longerror');
  await rpc.serve(queue, () => {
    throw new Error('x'.repeat(200_000));
  });
  await assert.rejects(rpc.call(queue, null, { timeoutMs: 5_000 }), (error: RpcError) => {
    assert.equal(error.code, 'UNKNOWN');
    assert.ok(error.message.length < 3_000);
    return true;
  });
});

test('headers too large for one AMQP frame are INVALID_ARGUMENT, before publishing', async () => {
  const rpc = await connectForTest();
  await assert.rejects(
    rpc.call(uniqueQueue('bigheaders'), null, { headers: { big: 'x'.repeat(20_000) } }),
    { code: 'INVALID_ARGUMENT' },
  );
});

test('a large request and reply (1 MiB each way) round-trip intact', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('large');
  await rpc.serve(queue, (request) => (request as string).toUpperCase());
  const big = 'abc'.repeat(350_000);
  assert.equal(await rpc.call(queue, big), big.toUpperCase());
});
