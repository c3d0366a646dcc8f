// RabbitRpcStrategy with a defineService contract: inputs (and outputs) validated,
// methods outside the contract UNIMPLEMENTED, a typed client calls the Nest handlers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NestFactory } from '@nestjs/core';
import { z } from 'zod';
import { defineService } from '../../src/index.js';
import { RabbitRpcStrategy } from '../../src/nestjs/index.js';
import { AMQP_URL, connectForTest, uniqueQueue } from '../helpers.js';
import { mathModule } from './app.js';
import { byName, rejectsWith, startMathService } from './helpers.js';

const math = defineService('math', {
  add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
  count: { input: z.number().int(), output: z.number(), stream: true },
  // The handler returns an object: the output check fails on purpose.
  context: { input: z.null(), output: z.string() },
});

describe('RabbitRpcStrategy with a contract', async () => {
  const queue = uniqueQueue('nest.contract');
  await startMathService(queue, { service: math, validateOutput: true });
  const rpc = await connectForTest();
  const client = rpc.client(math, { queue });

  test('a typed client calls the @MessagePattern handlers', async () => {
    const sum: number = await client.add({ a: 2, b: 5 });
    assert.equal(sum, 7);
    const items: number[] = [];
    for await (const n of client.count(3)) items.push(n);
    assert.deepEqual(items, [1, 2, 3]);
  });

  test('a bad input is INVALID_ARGUMENT with the issues; the handler does not run', async () => {
    const error = await rejectsWith(
      byName(rpc, queue)('add', { a: 'two', b: 5 }),
      'INVALID_ARGUMENT',
    );
    const { issues } = error.details as { issues: Array<{ path: unknown[] }> };
    assert.deepEqual(
      issues.map((issue) => issue.path),
      [['a']],
    );
  });

  test('a pattern outside the contract is UNIMPLEMENTED, even with a Nest handler', async () => {
    const error = await rejectsWith(byName(rpc, queue)('intercepted', 1), 'UNIMPLEMENTED');
    assert.deepEqual(error.details, { service: 'math', method: 'intercepted' });
  });

  test('with validateOutput, a reply that misses the output schema is INTERNAL', async () => {
    await rejectsWith(byName(rpc, queue)('context', null), 'INTERNAL');
  });

  test('listen() fails when a contract method has no @MessagePattern handler', async () => {
    const incomplete = defineService('incomplete', {
      add: { input: z.unknown(), output: z.unknown() },
      missing: { input: z.unknown(), output: z.unknown() },
    });
    const other = uniqueQueue('nest.incomplete');
    const app = await NestFactory.createMicroservice(mathModule(AMQP_URL, other), {
      strategy: new RabbitRpcStrategy({ url: AMQP_URL, queue: other, service: incomplete }),
      logger: false,
    });
    try {
      const error = await rejectsWith(app.listen(), 'INVALID_ARGUMENT');
      assert.match(error.message, /"missing"/);
    } finally {
      await app.close();
    }
  });
});
