// RabbitRpcClient, a Nest ClientProxy over rabbit-rpc, against the Nest app on the broker.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { RpcError, type RpcConnection } from '../../src/index.js';
import { RabbitRpcClient } from '../../src/nestjs/index.js';
import { AMQP_URL, uniqueQueue } from '../helpers.js';
import { probe } from './app.js';
import { rejectsWith, startMathService } from './helpers.js';

describe('RabbitRpcClient', async () => {
  const queue = uniqueQueue('nest.client');
  await startMathService(queue);
  const client = new RabbitRpcClient({ url: AMQP_URL, queue, timeoutMs: 5_000 });
  await client.connect();
  test.after(() => client.close());

  test('send() emits the reply once, then completes', async () => {
    assert.deepEqual(
      await lastValueFrom(client.send('add', { a: 40, b: 2 }).pipe(toArray())),
      [42],
    );
    assert.equal(await firstValueFrom(client.send({ cmd: 'sum' }, [1, 2, 3])), 6);
  });

  test('nothing is sent until subscription (Observables are lazy)', async () => {
    const rpc = client.unwrap<RpcConnection>();
    const before = rpc.stats().calls;
    const reply = client.send<number>('add', { a: 1, b: 1 });
    assert.equal(rpc.stats().calls, before);
    assert.equal(await firstValueFrom(reply), 2);
    assert.equal(rpc.stats().calls, before + 1);
  });

  test('errors are RpcErrors with the server code', async () => {
    const error = await rejectsWith(firstValueFrom(client.send('fail.rpc', null)), 'NOT_FOUND');
    assert.deepEqual(error.details, { id: 7 });
    await rejectsWith(firstValueFrom(client.send('no.such.pattern', null)), 'UNIMPLEMENTED');
  });

  test('a call without reply in time is DEADLINE_EXCEEDED (client timeoutMs, or per call)', async () => {
    const short = new RabbitRpcClient({ url: AMQP_URL, queue, timeoutMs: 200 });
    test.after(() => short.close());
    const aborted = once(probe, 'aborted:timeout1');
    await rejectsWith(firstValueFrom(short.send('slow', 'timeout1')), 'DEADLINE_EXCEEDED');
    await aborted;
    await rejectsWith(
      firstValueFrom(client.send('slow', 'timeout2', { timeoutMs: 200 })),
      'DEADLINE_EXCEEDED',
    );
  });

  test("unsubscribing cancels the call: the server handler's ctx.signal aborts", async () => {
    const started = once(probe, 'started:unsub');
    const aborted = once(probe, 'aborted:unsub');
    const subscription = client.send('slow', 'unsub').subscribe({
      next: () => assert.fail('no reply expected'),
      error: () => assert.fail('no error expected after unsubscribe'),
    });
    await started;
    subscription.unsubscribe();
    const [reason] = (await aborted) as [unknown];
    assert.ok(reason instanceof RpcError && reason.code === 'CANCELLED', String(reason));
  });

  test('emit() runs the @EventPattern handler and completes once it ran', async () => {
    const audited = once(probe, 'audit');
    await lastValueFrom(client.emit('audit', { event: 1 }), { defaultValue: undefined });
    const [data] = (await audited) as [unknown];
    assert.deepEqual(data, { event: 1 });
  });

  test('a queue nobody serves is UNAVAILABLE at once', async () => {
    const nowhere = new RabbitRpcClient({ url: AMQP_URL, queue: uniqueQueue('nest.nowhere') });
    test.after(() => nowhere.close());
    await rejectsWith(firstValueFrom(nowhere.send('add', { a: 1, b: 1 })), 'UNAVAILABLE');
  });
});
