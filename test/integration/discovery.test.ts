// Describe and discovery (issue 17) on the real broker: every rabbit-rpc server answers a
// describe request through the control plane; rpc.services() finds them all in one request,
// rpc.describe(queue) one service. Peers' answers are untrusted: bad ones are dropped.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { type } from 'arktype';
import * as v from 'valibot';
import { z } from 'zod';
import { defineService, method, RpcError, typeOnly } from '../../src/index.js';
import { LIBRARY } from '../../src/protocol/describe.js';
import {
  AMQP_URL,
  assertCode,
  codeOf,
  connectForTest,
  failOnUnhandled,
  uniqueQueue,
} from '../helpers.js';

failOnUnhandled();

function catalogue(queue: string) {
  return defineService(
    'catalogue',
    {
      get: {
        input: z.object({ id: z.number().int() }),
        output: z.object({ id: z.number(), name: z.string() }),
        errors: { NOT_FOUND: z.object({ id: z.number() }) },
        idempotent: true,
      },
      search: { input: v.object({ text: v.string() }), output: v.array(v.string()) },
      count: { input: type({ from: 'number' }), output: type('number'), stream: true },
      ping: method<null, 'pong'>(),
      note: { input: typeOnly<string>(), output: z.bigint() },
    },
    { queue },
  );
}

function serveCatalogue(rpc: Awaited<ReturnType<typeof connectForTest>>, queue: string) {
  return rpc.serve(catalogue(queue), {
    get: ({ id }) => {
      if (id === 0) throw new RpcError('NOT_FOUND', 'no such item', { details: { id } });
      return { id, name: 'tea' };
    },
    search: ({ text }) => [text],
    async *count({ from }) {
      yield await Promise.resolve(from);
    },
    ping: () => 'pong' as const,
    note: () => 1n,
  });
}

describe('rpc.describe(queue)', () => {
  test('a contract server: methods with their JSON Schemas, errors, version, instance, counters', async () => {
    const queue = uniqueQueue('disc.contract');
    const server = await connectForTest();
    await serveCatalogue(server, queue);
    const caller = await connectForTest();
    const client = caller.client(catalogue(queue));
    await client.get({ id: 1 });
    assertCode(await client.get({ id: 0 }).catch((error: unknown) => error), 'NOT_FOUND');

    const before = Date.now();
    const service = await caller.describe(queue, { timeoutMs: 300 });
    assert.ok(Date.now() - before >= 250, 'collects until timeoutMs');
    assert.equal(service.queue, queue);
    assert.equal(service.service, 'catalogue');
    assert.equal(service.consistent, true);
    const byName = new Map(service.methods.map((m) => [m.name, m]));
    const methods = (name: string) => {
      const found = byName.get(name);
      assert.ok(found, name);
      return found;
    };
    assert.deepEqual([...byName.keys()].sort(), ['count', 'get', 'note', 'ping', 'search']);
    // zod through ~standard.jsonSchema
    assert.deepEqual(methods('get').input, {
      type: 'object',
      properties: {
        id: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
      },
      required: ['id'],
    });
    assert.equal(methods('get').idempotent, true);
    assert.equal(methods('get').errors[0]?.code, 'NOT_FOUND');
    assert.equal((methods('get').errors[0]?.details as { type?: string }).type, 'object');
    // valibot through @valibot/to-json-schema
    assert.deepEqual(methods('search').input, {
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
    });
    assert.deepEqual(methods('search').output, { type: 'array', items: { type: 'string' } });
    // arktype through ~standard.jsonSchema; a streaming method
    assert.equal(methods('count').stream, true);
    assert.deepEqual(methods('count').output, { type: 'number' });
    assert.equal((methods('count').input as { type?: string }).type, 'object');
    // typeOnly: no schema; a schema with no JSON Schema (bigint): none either
    assert.equal(methods('ping').input, undefined);
    assert.equal(methods('ping').output, undefined);
    assert.equal(methods('note').input, undefined);
    assert.equal(methods('note').output, undefined);

    assert.equal(service.instances.length, 1);
    const [instance] = service.instances;
    assert.ok(instance);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    assert.deepEqual(instance.library, { name: 'rabbit-rpc', version: pkg.version });
    assert.equal(LIBRARY.version, pkg.version);
    assert.equal(instance.protocol, 1);
    assert.match(instance.instance, /^amq\.gen-/);
    assert.ok(Date.parse(instance.startedAt) <= Date.now());
    assert.equal(instance.prefetch, 10);
    assert.equal(instance.inFlight, 0);
    assert.equal(instance.counters.calls, 2);
    assert.deepEqual(instance.counters.errors, { NOT_FOUND: 1 });
  });

  test('a plain server describes itself with no methods; calls in flight are counted', async () => {
    const queue = uniqueQueue('disc.plain');
    const server = await connectForTest();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    await server.serve(
      queue,
      async () => {
        started();
        await held;
        return 'ok';
      },
      { prefetch: 3 },
    );
    const caller = await connectForTest();
    const call = caller.call(queue, 'x');
    await running;
    const service = await caller.describe(queue, { timeoutMs: 200 });
    release();
    assert.equal(await call, 'ok');
    assert.equal(service.service, undefined);
    assert.deepEqual(service.methods, []);
    const [instance] = service.instances;
    assert.ok(instance);
    assert.equal(instance.inFlight, 1);
    assert.equal(instance.prefetch, 3);
  });

  test('a queue nothing rabbit-rpc serves: NOT_FOUND, even with a plain AMQP consumer on it', async () => {
    const queue = uniqueQueue('disc.foreign');
    const amqp = new AMQPClient(AMQP_URL);
    await amqp.connect();
    after(() => amqp.close());
    const channel = await amqp.channel();
    await channel.queueDeclare(queue, { autoDelete: true });
    await channel.basicConsume(queue, { noAck: true }, () => undefined);
    const caller = await connectForTest();
    assert.equal(await codeOf(caller.describe(queue, { timeoutMs: 200 })), 'NOT_FOUND');
  });

  test('bad options: INVALID_ARGUMENT, unknown option names included', async () => {
    const caller = await connectForTest();
    const queue = uniqueQueue('disc.opts');
    assert.equal(await codeOf(caller.describe(queue, { timeoutMs: -1 })), 'INVALID_ARGUMENT');
    assert.equal(
      await codeOf(caller.services({ timeout: 5 } as unknown as { timeoutMs: number })),
      'INVALID_ARGUMENT',
    );
    assert.equal(await codeOf(caller.describe('')), 'INVALID_ARGUMENT');
  });

  test('max: resolves as soon as that many instances answered', async () => {
    const queue = uniqueQueue('disc.max');
    for (const rpc of await Promise.all([connectForTest(), connectForTest()])) {
      await rpc.serve(queue, () => 'up');
    }
    const caller = await connectForTest();
    const before = Date.now();
    const service = await caller.describe(queue, { max: 1, timeoutMs: 10_000 });
    assert.ok(Date.now() - before < 5_000);
    assert.equal(service.instances.length, 1);
    assert.equal(await codeOf(caller.describe(queue, { max: 0 })), 'INVALID_ARGUMENT');
  });

  test('signal: CANCELLED', async () => {
    const caller = await connectForTest();
    const controller = new AbortController();
    const pending = caller.services({ timeoutMs: 10_000, signal: controller.signal });
    controller.abort();
    assert.equal(await codeOf(pending), 'CANCELLED');
  });
});

describe('rpc.services()', () => {
  test('every instance of every queue in one request, grouped by queue', async () => {
    const contractQueue = uniqueQueue('disc.all.contract');
    const plainQueue = uniqueQueue('disc.all.plain');
    const [a, b, c] = await Promise.all([connectForTest(), connectForTest(), connectForTest()]);
    await serveCatalogue(a, contractQueue);
    await serveCatalogue(b, contractQueue);
    // One connection serving two queues answers once per server.
    await c.serve(plainQueue, () => 'plain');
    await serveCatalogue(c, contractQueue);
    const caller = await connectForTest();
    const before = Date.now();
    const all = await caller.services({ timeoutMs: 400 });
    const elapsed = Date.now() - before;
    assert.ok(elapsed < 2_000, `one round trip: ${elapsed} ms`);
    const mine = all.filter((s) => s.queue === contractQueue || s.queue === plainQueue);
    assert.deepEqual(
      mine.map((s) => [s.queue, s.service, s.instances.length]),
      [contractQueue, plainQueue]
        .sort()
        .map((q) => (q === contractQueue ? [q, 'catalogue', 3] : [q, undefined, 1])),
    );
    const contract = mine.find((s) => s.queue === contractQueue);
    assert.equal(new Set(contract?.instances.map((i) => i.instance)).size, 3);
    assert.equal(contract?.methods.length, 5);
  });

  test("hostile describe replies are dropped; the real servers' answers stand", async () => {
    const queue = uniqueQueue('disc.hostile');
    const server = await connectForTest();
    await server.serve(queue, () => 'real');
    // A peer that binds to the control exchange with the queue's name and answers describe
    // requests with garbage: not JSON, the wrong shape, a schema nested 10,000 deep, 2 MiB.
    const amqp = new AMQPClient(AMQP_URL);
    await amqp.connect();
    after(() => amqp.close());
    const channel = await amqp.channel();
    const { name } = await channel.queueDeclare('', { exclusive: true, autoDelete: true });
    await channel.queueBind(name, 'rabbit-rpc.control', queue);
    const good = {
      describe: 1,
      queue,
      methods: [] as unknown[],
      library: { name: 'x', version: '1' },
      protocol: 1,
      instance: 'fake',
      startedAt: new Date().toISOString(),
      inFlight: 0,
      prefetch: 1,
      counters: { calls: 0, errors: {}, expired: 0 },
    };
    const deep = '{"type":"array","items":'.repeat(10_000) + '{}' + '}'.repeat(10_000);
    const bodies = [
      'not json',
      JSON.stringify({ ...good, inFlight: -1 }),
      JSON.stringify({ ...good, methods: 'all' }),
      JSON.stringify({ ...good, counters: { calls: 1, errors: [], expired: 0 } }),
      JSON.stringify({
        ...good,
        methods: [{ name: 'm', stream: false, idempotent: false, errors: [], input: 'x' }],
      }),
      JSON.stringify(good).replace(
        '"methods":[]',
        `"methods":[{"name":"m","stream":false,"idempotent":false,"errors":[],"input":${deep}}]`,
      ),
      JSON.stringify({ ...good, pad: 'x'.repeat(2 * 1024 * 1024) }),
    ];
    await channel.basicConsume(name, { noAck: true }, (message) => {
      const { replyTo, correlationId } = message.properties;
      if (!replyTo || correlationId === undefined) return;
      for (const body of bodies) {
        void channel.basicPublish('', replyTo, body, {
          correlationId,
          contentType: 'application/json',
        });
      }
    });
    const caller = await connectForTest();
    const service = await caller.describe(queue, { timeoutMs: 500 });
    assert.deepEqual(
      service.instances.map((i) => i.library.name),
      ['rabbit-rpc'],
    );
  });
});
