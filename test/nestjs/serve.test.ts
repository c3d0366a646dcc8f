// RabbitRpcStrategy serving a real Nest application on the real broker: patterns in the AMQP
// `type`, the context, events, streams, cancellation, nested calls.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { firstValueFrom } from 'rxjs';
import { RpcError, type RpcConnection } from '../../src/index.js';
import type { RabbitRpcContext } from '../../src/nestjs/index.js';
import { connectForTest, uniqueQueue } from '../helpers.js';
import { probe } from './app.js';
import { byName, rejectsWith, startMathService, streamByName } from './helpers.js';

describe('RabbitRpcStrategy', async () => {
  const queue = uniqueQueue('nest.serve');
  const { strategy } = await startMathService(queue);
  const rpc = await connectForTest();
  const math = byName(rpc, queue);

  test('status and unwrap(): the rabbit-rpc connection behind the strategy', async () => {
    assert.equal(await firstValueFrom(strategy.status), 'connected');
    assert.equal(strategy.unwrap<RpcConnection>().state, 'connected');
    assert.equal(strategy.queue, queue);
  });

  test("Nest's processing hooks wrap each request, with the RabbitRpcContext", async () => {
    const seen: string[] = [];
    strategy.setOnProcessingStartHook((_id, context, done) => {
      seen.push(`start ${(context as RabbitRpcContext).getPattern()}`);
      void done();
    });
    strategy.setOnProcessingEndHook((_id, context) => {
      seen.push(`end ${(context as RabbitRpcContext).getPattern()}`);
    });
    try {
      assert.equal(await math('add', { a: 1, b: 1 }), 2);
    } finally {
      strategy.setOnProcessingStartHook((_id, _context, done) => {
        void done();
      });
      strategy.setOnProcessingEndHook(() => undefined);
    }
    assert.deepEqual(seen, ['start add', 'end add']);
  });

  test('@MessagePattern("add") answers a rabbit-rpc call with type "add"', async () => {
    assert.equal(await math('add', { a: 2, b: 3 }), 5);
  });

  test('an object pattern is called by its JSON form, as Nest routes it', async () => {
    assert.equal(await math('{"cmd":"sum"}', [1, 2, 3]), 6);
  });

  test('a pattern without handler is UNIMPLEMENTED; a call without type too', async () => {
    await rejectsWith(math('nope', 1), 'UNIMPLEMENTED');
    await rejectsWith(rpc.call(queue, { a: 1 }), 'UNIMPLEMENTED');
  });

  test('@Ctx() is a RabbitRpcContext: deadline, headers, correlation id, user id, pattern', async () => {
    const before = Date.now();
    const seen = (await math('context', null, {
      timeoutMs: 5_000,
      headers: { 'x-test': 'hello' },
    })) as Record<string, unknown>;
    assert.equal(seen['header'], 'hello');
    assert.equal(seen['pattern'], 'context');
    assert.equal(seen['queue'], queue);
    assert.equal(seen['wire'], 'rabbit-rpc');
    assert.equal(
      seen['userId'],
      decodeURIComponent(new URL(process.env['AMQP_URL'] ?? 'amqp://guest@x').username) || 'guest',
    );
    assert.equal(typeof seen['correlationId'], 'string');
    const deadline = seen['deadline'] as number;
    assert.ok(deadline >= before + 5_000 && deadline <= Date.now() + 5_000, `deadline ${deadline}`);
  });

  test('a nested call with { parent: ctx } inherits the deadline', async () => {
    const before = Date.now();
    const inner = (await math('nested', null, { timeoutMs: 4_000 })) as Record<string, unknown>;
    const deadline = inner['deadline'] as number;
    // The inner call's deadline is the outer one's remaining time, not the 30 s default.
    assert.ok(deadline <= before + 4_000 + 50 && deadline > before, `inner deadline ${deadline}`);
  });

  test('the caller cancelling aborts ctx.signal in the Nest handler (CANCELLED)', async () => {
    const abort = new AbortController();
    const started = once(probe, 'started:cancel');
    const aborted = once(probe, 'aborted:cancel');
    const call = math('slow', 'cancel', { signal: abort.signal });
    await started;
    abort.abort();
    await rejectsWith(call, 'CANCELLED');
    const [reason] = (await aborted) as [unknown];
    assert.ok(reason instanceof RpcError && reason.code === 'CANCELLED');
  });

  test('the deadline passing aborts ctx.signal (DEADLINE_EXCEEDED at both ends)', async () => {
    const aborted = once(probe, 'aborted:deadline');
    await rejectsWith(math('slow', 'deadline', { timeoutMs: 300 }), 'DEADLINE_EXCEEDED');
    const [reason] = (await aborted) as [unknown];
    assert.ok(reason instanceof RpcError && reason.code === 'DEADLINE_EXCEEDED');
  });

  test('an Observable handler: a call gets its last value, a stream every value', async () => {
    assert.equal(await math('count', 3), 3);
    const count = streamByName(rpc, queue, 'count');
    const items: unknown[] = [];
    for await (const item of count(3)) items.push(item);
    assert.deepEqual(items, [1, 2, 3]);
  });

  test('@EventPattern runs for a request that expects no reply', async () => {
    const audited = once(probe, 'audit');
    await publishWithoutReplyTo(queue, 'audit', { user: 7 });
    const [data, wire] = (await audited) as [unknown, unknown];
    assert.deepEqual(data, { user: 7 });
    assert.equal(wire, 'rabbit-rpc');
  });
});

async function publishWithoutReplyTo(queue: string, type: string, body: unknown): Promise<void> {
  const { AMQPClient } = await import('@cloudamqp/amqp-client');
  const client = new AMQPClient(process.env['AMQP_URL'] ?? 'amqp://guest:guest@localhost:5672');
  await client.connect();
  const channel = await client.channel();
  await channel.basicPublish('', queue, JSON.stringify(body), {
    type,
    contentType: 'application/json',
  });
  await client.close();
}
