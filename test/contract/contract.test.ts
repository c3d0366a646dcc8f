import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type } from 'arktype';
import * as v from 'valibot';
import { z } from 'zod';
import {
  RpcError,
  defineService,
  isServiceError,
  method,
  typeOnly,
  type HandlerContext,
  type RpcConnection,
  type ServiceImplementation,
  type StandardSchemaV1,
} from '../../src/index.js';
import {
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
  uniqueServiceName,
} from '../helpers.js';

failOnUnhandled();

/** Asserts that `promise` rejects with an RpcError of `code`, and returns that error. */
async function rejectsWith(promise: Promise<unknown>, code: string): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
    assert.equal(error.code, code);
    return error;
  }
  assert.fail(`expected a rejection with ${code}`);
}

/** A Standard Schema with an async validate: a non-empty string. */
const asyncNonEmpty: StandardSchemaV1<string> = {
  '~standard': {
    version: 1,
    vendor: 'test-async',
    validate: async (value) => {
      await Promise.resolve();
      return typeof value === 'string' && value.length > 0
        ? { value }
        : { issues: [{ message: 'expected a non-empty string', path: [{ key: 'value' }] }] };
    },
  },
};

function mathService(queue: string) {
  return defineService(
    'math',
    {
      add: {
        input: z.object({ a: z.number(), b: z.number() }),
        output: z.number(),
      },
      // the handler sees the transformed input: the string's length
      length: { input: z.string().transform((s) => s.length), output: z.number() },
      divide: {
        input: z.object({ a: z.number(), b: z.number() }),
        output: z.number(),
        errors: {
          INVALID_ARGUMENT: z.object({ field: z.literal('b') }),
          OUT_OF_RANGE: typeOnly<{ limit: number }>(),
        },
      },
      get: {
        input: z.object({ id: z.string() }),
        output: z.object({ id: z.string(), name: z.string() }),
        errors: { NOT_FOUND: z.object({ id: z.string() }), ABORTED: asyncNonEmpty },
      },
      greet: { input: v.object({ name: v.string() }), output: v.string() },
      area: { input: type({ w: 'number', h: 'number' }), output: type('number') },
      shout: { input: asyncNonEmpty, output: asyncNonEmpty },
      ping: method<undefined, 'pong'>(),
      slow: method<{ ms: number }, 'done'>(),
      lie: method<undefined, number>(), // the implementation returns a string on purpose
    },
    { queue },
  );
}
type MathService = ReturnType<typeof mathService>;

function mathImplementation(calls: string[] = []): ServiceImplementation<MathService> {
  return {
    add: ({ a, b }, ctx) => {
      calls.push(ctx.method);
      return a + b;
    },
    length: (n) => n,
    divide: ({ a, b }, ctx) => {
      if (b === 0) throw ctx.error('INVALID_ARGUMENT', 'b must not be 0', { field: 'b' });
      if (Math.abs(a / b) > 1000) throw ctx.error('OUT_OF_RANGE', 'too big', { limit: 1000 });
      if (a < 0) throw new RpcError('FAILED_PRECONDITION', 'not declared');
      return a / b;
    },
    get: ({ id }, ctx) => {
      if (id === 'abort') throw ctx.error('ABORTED', 'aborted', 'why');
      if (id === 'abort-bad') throw ctx.error('ABORTED', 'aborted', '');
      if (id === 'bad-details') throw ctx.error('NOT_FOUND', 'no', { id: 1 } as never);
      if (id !== '1') throw ctx.error('NOT_FOUND', `no ${id}`, { id });
      return { id, name: 'one' };
    },
    greet: ({ name }) => `hello ${name}`,
    area: ({ w, h }) => w * h,
    shout: (s) => s.toUpperCase(),
    ping: () => 'pong',
    slow: async ({ ms }, ctx) => {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(ctx.signal.reason as Error);
        });
      });
      return 'done' as const;
    },
    lie: () => 'not a number' as unknown as number,
  };
}

async function setUp(options: { validateOutput?: boolean } = {}) {
  const rpc = await connectForTest();
  const service = mathService(uniqueQueue('math'));
  const calls: string[] = [];
  const server = await rpc.serve(service, mathImplementation(calls), options);
  return { rpc, service, calls, server, math: rpc.client(service) };
}

describe('service contracts: server and client', () => {
  test('a typed call runs the method and resolves with its output (zod)', async () => {
    const { math, calls } = await setUp();
    assert.equal(await math.add({ a: 1, b: 2 }), 3);
    assert.deepEqual(calls, ['add']);
  });

  test('valibot and arktype schemas work the same way', async () => {
    const { math } = await setUp();
    assert.equal(await math.greet({ name: 'ann' }), 'hello ann');
    assert.equal(await math.area({ w: 2, h: 3 }), 6);
    const bad = await rejectsWith(math.greet({ name: 3 as unknown as string }), 'INVALID_ARGUMENT');
    assert.deepEqual(pathsOf(bad), [['name']]);
    const bad2 = await rejectsWith(
      math.area({ w: 2 } as { w: number; h: number }),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(pathsOf(bad2), [['h']]);
  });

  test('the handler receives the schema output (transforms apply)', async () => {
    const { math } = await setUp();
    assert.equal(await math.length('abcd'), 4);
  });

  test('an async Standard Schema validates input and output', async () => {
    const { math } = await setUp({ validateOutput: true });
    assert.equal(await math.shout('hey'), 'HEY');
    const error = await rejectsWith(math.shout(''), 'INVALID_ARGUMENT');
    assert.deepEqual(error.details, {
      issues: [{ message: 'expected a non-empty string', path: ['value'] }],
    });
  });

  test('types-only methods are not validated at run time', async () => {
    const { math } = await setUp();
    assert.equal(await math.ping(), 'pong');
    assert.equal(await math.lie(), 'not a number');
  });

  test('the method name travels in the AMQP type property, on the contract queue', async () => {
    const rpc = await connectForTest();
    const service = mathService(uniqueQueue('math'));
    const seen = deferred<{ method: string | undefined; queue: string; request: unknown }>();
    // A plain handler on the service queue sees what goes over the wire.
    await rpc.serve(service.queue, (request, ctx: HandlerContext) => {
      seen.resolve({ method: ctx.method, queue: ctx.queue, request });
      return 3;
    });
    assert.equal(await rpc.client(service).add({ a: 1, b: 2 }), 3);
    assert.deepEqual(await seen.promise, {
      method: 'add',
      queue: service.queue,
      request: { a: 1, b: 2 },
    });
  });

  test('the default queue is rpc.<name>; serve and client can override it', async () => {
    const plain = defineService('plain', { ping: method<undefined, string>() });
    assert.equal(plain.queue, 'rpc.plain');
    const rpc = await connectForTest();
    const queue = uniqueQueue('override');
    await rpc.serve(plain, { ping: (_input, ctx) => ctx.queue }, { queue });
    assert.equal(await rpc.client(plain, { queue }).ping(), queue);
  });

  test('bad input gets INVALID_ARGUMENT with the issues, and the handler does not run', async () => {
    const { math, calls } = await setUp();
    const error = await rejectsWith(
      math.add({ a: 1, b: 'two' } as unknown as { a: number; b: number }),
      'INVALID_ARGUMENT',
    );
    const details = error.details as { issues: { message: string; path: unknown[] }[] };
    assert.equal(details.issues.length, 1);
    const issue = details.issues.at(0);
    assert.deepEqual(issue?.path, ['b']);
    assert.equal(typeof issue.message, 'string');
    assert.deepEqual(calls, []);
  });

  test('an unknown method gets UNIMPLEMENTED at once', async () => {
    const { rpc, service } = await setUp();
    const started = Date.now();
    // A client without the contract value sends any method name it is asked for.
    const proxy = rpc.client<typeof service>({ name: 'math', queue: service.queue });
    const untyped = (name: string) =>
      (proxy as unknown as Record<string, (input: unknown, options: object) => Promise<unknown>>)[
        name
      ]?.({}, { timeoutMs: 10_000 }) ?? Promise.reject(new Error(`no proxy method ${name}`));
    const error = await rejectsWith(untyped('subtract'), 'UNIMPLEMENTED');
    assert.ok(Date.now() - started < 5_000, 'answered, not timed out');
    assert.deepEqual(error.details, { service: 'math', method: 'subtract' });
    // Names inherited from Object.prototype are not methods.
    for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      await rejectsWith(untyped(name), 'UNIMPLEMENTED');
    }
  });

  test('a request with no method name (no type property) gets UNIMPLEMENTED', async () => {
    const { rpc, service } = await setUp();
    const error = await rejectsWith(
      rpc.call(service.queue, { a: 1, b: 2 }, { timeoutMs: 10_000 }),
      'UNIMPLEMENTED',
    );
    assert.deepEqual(error.details, { service: 'math', method: null });
  });

  test('output validation is off by default and gives INTERNAL when on', async () => {
    const off = await setUp();
    assert.equal(await off.math.lie(), 'not a number'); // types only: nothing to check
    const rpc = await connectForTest();
    const service = defineService(
      'out',
      { n: { input: z.number(), output: z.number() } },
      { queue: uniqueQueue('out') },
    );
    const wrong = { n: (x: number) => String(x) as unknown as number };
    await rpc.serve(service, wrong);
    assert.equal(await rpc.client(service).n(1), '1'); // off: the wrong reply goes out
    const checkedQueue = uniqueQueue('out-checked');
    await rpc.serve(service, wrong, { validateOutput: true, queue: checkedQueue });
    const error = await rejectsWith(rpc.client(service, { queue: checkedQueue }).n(1), 'INTERNAL');
    const details = error.details as { issues: unknown[] };
    assert.equal(details.issues.length, 1);
  });

  test('validateOutput also checks the details of declared errors', async () => {
    const { math } = await setUp({ validateOutput: true });
    await rejectsWith(math.get({ id: 'bad-details' }), 'INTERNAL');
    await rejectsWith(math.get({ id: 'abort-bad' }), 'INTERNAL'); // async schema
    await rejectsWith(math.get({ id: '2' }), 'NOT_FOUND'); // good details pass
  });

  test('per-call options: timeoutMs and signal', async () => {
    const { math } = await setUp();
    await rejectsWith(math.slow({ ms: 5_000 }, { timeoutMs: 100 }), 'DEADLINE_EXCEEDED');
    const controller = new AbortController();
    const call = math.slow({ ms: 5_000 }, { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort();
    await rejectsWith(call, 'CANCELLED');
    assert.equal(await math.slow({ ms: 1 }, { timeoutMs: 5_000 }), 'done');
  });

  test('a server without every contract method is refused', async () => {
    const rpc = await connectForTest();
    const service = mathService(uniqueQueue('partial'));
    const partial = { add: () => 1 } as unknown as ServiceImplementation<MathService>;
    await rejectsWith(rpc.serve(service, partial), 'INVALID_ARGUMENT');
  });
});

describe('service contracts: client-side validation', () => {
  test('validateInput rejects a bad input before anything is published', async () => {
    const rpc = await connectForTest();
    const service = mathService(uniqueQueue('math'));
    let received = 0;
    await rpc.serve(service.queue, () => {
      received++;
      return 0;
    });
    const math = rpc.client(service, { validateInput: true });
    const error = await rejectsWith(
      math.add({ a: 1 } as unknown as { a: number; b: number }),
      'INVALID_ARGUMENT',
    );
    assert.deepEqual(pathsOf(error), [['b']]);
    assert.equal(await math.add({ a: 1, b: 1 }), 0); // a good input goes out
    assert.equal(received, 1);
  });

  test('validateInput sends the original value, not the transformed one', async () => {
    const { rpc, service } = await setUp();
    const math = rpc.client(service, { validateInput: true });
    assert.equal(await math.length('abc'), 3);
  });

  test('validateOutput rejects a reply that misses the schema with INTERNAL', async () => {
    const rpc = await connectForTest();
    const service = mathService(uniqueQueue('math'));
    await rpc.serve(service.queue, (_request, ctx) => (ctx.method === 'add' ? 'three' : 'x'));
    await rejectsWith(
      rpc.client(service, { validateOutput: true }).add({ a: 1, b: 2 }),
      'INTERNAL',
    );
    assert.equal(await rpc.client(service).add({ a: 1, b: 2 }), 'three'); // off by default
  });

  test('validation options need the contract value', async () => {
    const rpc = await connectForTest();
    assert.throws(
      () => rpc.client<MathService>({ name: 'math', queue: 'x' }, { validateInput: true }),
      (error: unknown) => error instanceof RpcError && error.code === 'INVALID_ARGUMENT',
    );
  });
});

describe('service contracts: typed errors', () => {
  test('a declared error reaches the client with its code and details, and narrows', async () => {
    const { math, service } = await setUp();
    const error = await rejectsWith(math.get({ id: '7' }), 'NOT_FOUND');
    assert.deepEqual(error.details, { id: '7' });
    assert.ok(isServiceError(error, service, 'get'));
    assert.ok(isServiceError(error, math, 'get'));
    assert.ok(isServiceError(error, service, 'get', 'NOT_FOUND'));
    assert.ok(!isServiceError(error, service, 'get', 'ABORTED'));
    assert.ok(!isServiceError(error, service, 'divide')); // not declared by divide
    assert.equal(await math.get({ id: '1' }).then((user) => user.name), 'one');
  });

  test('types-only declared errors are recognised by code', async () => {
    const { math, service } = await setUp();
    const error = await rejectsWith(math.divide({ a: 1e6, b: 1 }), 'OUT_OF_RANGE');
    assert.ok(isServiceError(error, service, 'divide', 'OUT_OF_RANGE'));
    assert.deepEqual(error.details, { limit: 1000 });
  });

  test('the framework INVALID_ARGUMENT is not mistaken for a declared one', async () => {
    const { math, service } = await setUp();
    const declared = await rejectsWith(math.divide({ a: 1, b: 0 }), 'INVALID_ARGUMENT');
    assert.ok(isServiceError(declared, service, 'divide'));
    assert.deepEqual(declared.details, { field: 'b' });
    const framework = await rejectsWith(
      math.divide({ a: 1 } as unknown as { a: number; b: number }),
      'INVALID_ARGUMENT',
    );
    assert.ok(!isServiceError(framework, service, 'divide'));
  });

  test('undeclared codes and local errors are not service errors', async () => {
    const { math, service } = await setUp();
    const undeclared = await rejectsWith(math.divide({ a: -1, b: 1 }), 'FAILED_PRECONDITION');
    assert.ok(!isServiceError(undeclared, service, 'divide'));
    const local = await rejectsWith(
      math.slow({ ms: 5_000 }, { timeoutMs: 50 }),
      'DEADLINE_EXCEEDED',
    );
    assert.ok(!isServiceError(local, service, 'slow'));
    assert.ok(!isServiceError(new Error('x'), service, 'get'));
    assert.ok(!isServiceError(undefined, service, 'get'));
  });

  test('declared errors with async detail schemas are verified by the client', async () => {
    const { math, service } = await setUp();
    const error = await rejectsWith(math.get({ id: 'abort' }), 'ABORTED');
    assert.equal(error.details, 'why');
    assert.ok(isServiceError(error, math, 'get', 'ABORTED'));
    // The same code and details made locally were not verified: an async schema cannot be
    // checked inside a synchronous guard.
    assert.ok(!isServiceError(new RpcError('ABORTED', 'x', { details: 'why' }), service, 'get'));
    // ...and bad details fail the async check.
    const bad = await rejectsWith(math.get({ id: 'abort-bad' }), 'ABORTED');
    assert.ok(!isServiceError(bad, math, 'get'));
  });
});

describe('service contracts: clients from a type-only import', () => {
  test('a client named by the contract type calls the server', async () => {
    const { rpc, service } = await setUp();
    const math = rpc.client<MathService>({ name: 'math', queue: service.queue });
    assert.equal(await math.add({ a: 2, b: 3 }), 5);
    const error = await rejectsWith(math.get({ id: '9' }), 'NOT_FOUND');
    assert.ok(isServiceError(error, math, 'get', 'NOT_FOUND'));
    assert.ok(!isServiceError(error, math, 'get', 'ABORTED'));
    // Without the contract value, the guard needs the expected code.
    assert.throws(() => isServiceError(error, math, 'get'), TypeError);
  });

  test('the default queue follows the name', async () => {
    const rpc = await connectForTest();
    const name = uniqueServiceName('svc');
    const service = defineService(name, { ping: method<undefined, 'pong'>() });
    await rpc.serve(service, { ping: () => 'pong' });
    const client = rpc.client<typeof service>(name);
    assert.equal(await client.ping(), 'pong');
  });

  test('the proxy is not a thenable and ignores symbols', async () => {
    const rpc: RpcConnection = await connectForTest();
    const client = rpc.client<MathService>({ name: 'math', queue: 'unused' });
    assert.equal((client as unknown as { then?: unknown }).then, undefined);
    assert.equal(await Promise.resolve(client), client);
    assert.equal((client as unknown as Record<symbol, unknown>)[Symbol.iterator], undefined);
  });
});

function pathsOf(error: RpcError): unknown[][] {
  return (error.details as { issues: { path: unknown[] }[] }).issues.map((issue) => issue.path);
}
