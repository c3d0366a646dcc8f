// AsyncAPI 3.0 from contracts and from discovered services (issue 17, part 4). Every
// generated document is validated with the official @asyncapi/parser: no errors, and no
// warnings but those listed (and explained) in DOCUMENTED_WARNINGS.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Parser, type Diagnostic } from '@asyncapi/parser';
import { type } from 'arktype';
import * as v from 'valibot';
import { z } from 'zod';
import { toAsyncApi, type AsyncApiDocument } from '../../src/asyncapi/index.js';
import { defineService, method, typeOnly } from '../../src/index.js';
import { codeOf, connectForTest, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

/**
 * Warnings the parser's style rules give that the document keeps on purpose (also in
 * docs/guides/discovery.md): none today.
 */
const DOCUMENTED_WARNINGS = new Set<string>([]);

const parser = new Parser();

async function validate(document: AsyncApiDocument): Promise<Diagnostic[]> {
  const { diagnostics } = await parser.parse(JSON.stringify(document));
  // Severity 0 is an error, 1 a warning (2 information, 3 a hint).
  const problems = diagnostics.filter((d) => {
    const severity = d.severity as number;
    return severity === 0 || (severity === 1 && !DOCUMENTED_WARNINGS.has(d.code.toString()));
  });
  assert.deepEqual(
    problems.map((d) => `${d.code}: ${d.message} at ${d.path.join('/')}`),
    [],
  );
  return diagnostics;
}

const orders = defineService(
  'orders',
  {
    place: {
      input: z.object({ sku: z.string(), quantity: z.number().int().positive() }),
      output: z.object({ orderId: z.string() }),
      errors: { FAILED_PRECONDITION: z.object({ available: z.number() }), NOT_FOUND: typeOnly() },
    },
    find: { input: v.object({ orderId: v.string() }), output: v.nullable(v.string()) },
    watch: { input: type({ orderId: 'string' }), output: type({ status: 'string' }), stream: true },
    ping: method<null, 'pong'>(),
  },
  { queue: 'rpc.orders' },
);
const weird = defineService('weird', { 'a:b': method<null, null>() }, { queue: 'odd/queue name' });

describe('toAsyncApi()', () => {
  test('a channel per queue, an operation per method with its reply, messages with schemas', async () => {
    const document = await toAsyncApi([orders, weird], {
      title: 'Shop',
      version: '2.1.0',
      server: { host: 'localhost:5672', vhost: '/' },
    });
    await validate(document);
    const channels = document['channels'] as Record<string, Record<string, unknown>>;
    const operations = document['operations'] as Record<string, Record<string, unknown>>;
    assert.deepEqual(Object.keys(channels).sort(), [
      'odd_queue_name',
      'odd_queue_name.reply',
      'rpc.orders',
      'rpc.orders.reply',
    ]);
    assert.equal(channels['rpc.orders']?.['address'], 'rpc.orders');
    assert.deepEqual((channels['rpc.orders']['bindings'] as { amqp: unknown }).amqp, {
      is: 'queue',
      queue: { name: 'rpc.orders', exclusive: false },
      bindingVersion: '0.3.0',
    });
    assert.equal(channels['odd_queue_name']?.['address'], 'odd/queue name');
    assert.deepEqual(Object.keys(operations).sort(), [
      'odd_queue_name.a_b',
      'rpc.orders.find',
      'rpc.orders.ping',
      'rpc.orders.place',
      'rpc.orders.watch',
    ]);
    const place = operations['rpc.orders.place'] as {
      action: string;
      reply: { address: { location: string }; messages: Array<{ $ref: string }> };
    };
    assert.equal(place.action, 'receive');
    assert.equal(place.reply.address.location, '$message.header#/reply_to');
    assert.deepEqual(
      place.reply.messages.map((m) => m.$ref),
      [
        '#/channels/rpc.orders.reply/messages/place.reply',
        '#/channels/rpc.orders.reply/messages/place.error',
      ],
    );
    const request = (channels['rpc.orders']['messages'] as Record<string, Record<string, unknown>>)[
      'place.request'
    ];
    assert.ok(request);
    assert.deepEqual(request['correlationId'], { location: '$message.header#/correlation_id' });
    assert.deepEqual(request['bindings'], {
      amqp: { messageType: 'place', bindingVersion: '0.3.0' },
    });
    assert.equal((request['payload'] as { type: string }).type, 'object');
    const replies = channels['rpc.orders.reply']?.['messages'] as Record<
      string,
      Record<string, unknown>
    >;
    const error = replies['place.error'] as {
      headers: { required: string[] };
      payload: { anyOf: unknown[] };
    };
    assert.deepEqual(error.headers.required, ['rpc-status', 'rpc-message']);
    assert.equal(error.payload.anyOf.length, 2, 'declared details schema, then anything');
    // The stream extension, and the end message in the reply.
    const watch = operations['rpc.orders.watch'] as Record<string, unknown>;
    assert.ok(watch['x-rabbit-rpc-stream']);
    assert.ok(replies['watch.end']);
    // valibot's output through its converter
    assert.deepEqual(replies['find.reply']?.['payload'], {
      anyOf: [{ type: 'string' }, { type: 'null' }],
    });
  });

  test('bad options and sources: INVALID_ARGUMENT', async () => {
    assert.equal(await codeOf(toAsyncApi([orders], { titel: 'x' } as never)), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(toAsyncApi([42] as never)), 'INVALID_ARGUMENT');
    assert.equal(await codeOf(toAsyncApi('orders' as never)), 'INVALID_ARGUMENT');
  });

  test('from the broker: the services rpc.services() finds, plain servers included', async () => {
    const contractQueue = uniqueQueue('asyncapi.orders');
    const plainQueue = uniqueQueue('asyncapi.plain');
    const server = await connectForTest();
    await server.serve(defineService('orders', orders.methods, { queue: contractQueue }), {
      place: () => ({ orderId: '1' }),
      find: () => null,
      async *watch() {
        yield await Promise.resolve({ status: 'new' });
      },
      ping: () => 'pong' as const,
    });
    await server.serve(plainQueue, () => 'plain');
    const caller = await connectForTest();
    const found = (await caller.services({ timeoutMs: 300 })).filter(
      (s) => s.queue === contractQueue || s.queue === plainQueue,
    );
    assert.equal(found.length, 2);
    const document = await toAsyncApi(found);
    await validate(document);
    const fromBroker = JSON.stringify(document['operations']);
    const fromContract = JSON.stringify(
      (await toAsyncApi([defineService('orders', orders.methods, { queue: contractQueue })]))[
        'operations'
      ],
    );
    assert.ok(
      fromBroker.includes(fromContract.slice(1, -1)),
      'the same operations as from the contract',
    );
    assert.ok(fromBroker.includes('(any request)'));
  });
});
