// The migration bridge: Nest's own RMQ client (ClientRMQ, its JSON envelope and Direct
// Reply-to) calls the Nest app served by RabbitRpcStrategy, on the same queue that
// rabbit-rpc callers use.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { ClientProxyFactory, Transport, type ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { AMQP_URL, connectForTest, uniqueQueue } from '../helpers.js';
import { probe } from './app.js';
import { byName, startMathService } from './helpers.js';

describe("the bridge for Nest's ClientRMQ", async () => {
  const queue = uniqueQueue('nest.bridge');
  await startMathService(queue);
  const nest: ClientProxy = ClientProxyFactory.create({
    transport: Transport.RMQ,
    // Nest's default queueOptions (durable), which is also rabbit-rpc's default declaration.
    options: { urls: [AMQP_URL], queue },
  });
  await nest.connect();
  test.after(async () => {
    await nest.close();
  });

  test('ClientRMQ.send gets the reply, string and object patterns', async () => {
    assert.equal(await firstValueFrom(nest.send('add', { a: 1, b: 2 })), 3);
    assert.equal(await firstValueFrom(nest.send({ cmd: 'sum' }, [4, 5])), 9);
  });

  test('the handler sees the request as a Nest envelope', async () => {
    const seen = await firstValueFrom(nest.send<Record<string, unknown>>('context', {}));
    assert.equal(seen['wire'], 'nest-envelope');
    assert.equal(seen['pattern'], 'context');
  });

  test('errors reach ClientRMQ in its envelope, with the rabbit-rpc code', async () => {
    await assert.rejects(firstValueFrom(nest.send('fail.rpc', {})), {
      status: 'error',
      code: 'NOT_FOUND',
      message: 'no such user',
      details: { id: 7 },
    });
    await assert.rejects(firstValueFrom(nest.send('validated', { a: 'x', b: 1 })), {
      code: 'INVALID_ARGUMENT',
    });
    await assert.rejects(firstValueFrom(nest.send('no.such.pattern', {})), {
      code: 'UNIMPLEMENTED',
    });
  });

  test('ClientRMQ.emit reaches the @EventPattern handler', async () => {
    const audited = once(probe, 'audit');
    await lastValueFrom(nest.emit('audit', { from: 'nest' }), { defaultValue: undefined });
    const [data, wire] = (await audited) as [unknown, unknown];
    assert.deepEqual(data, { from: 'nest' });
    assert.equal(wire, 'nest-envelope');
  });

  test('rabbit-rpc callers and ClientRMQ share the queue at the same time', async () => {
    const call = byName(await connectForTest(), queue);
    const replies = await Promise.all([
      call('add', { a: 1, b: 1 }),
      firstValueFrom(nest.send('add', { a: 2, b: 2 })),
      call('add', { a: 3, b: 3 }),
      firstValueFrom(nest.send('add', { a: 4, b: 4 })),
    ]);
    assert.deepEqual(replies, [2, 4, 6, 8]);
  });
});
