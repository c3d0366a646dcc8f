/** Streaming methods of service contracts (`stream: true`), against the real broker. */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  RpcError,
  defineService,
  isServiceError,
  method,
  typeOnly,
  type HandlerContext,
  type ServiceImplementation,
} from '../../src/index.js';
import { connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

function logsService(queue: string) {
  return defineService(
    'logs',
    {
      count: { input: z.object({ to: z.number().int() }), output: z.number(), stream: true },
      // The item schema transforms: the handler yields strings, the client reads lengths.
      lengths: {
        input: z.array(z.string()),
        output: z.string().transform((s) => s.length),
        stream: true,
      },
      // Yields what it is given: lets a test send items that miss the item schema.
      echo: { input: z.array(z.unknown()), output: z.number(), stream: true },
      forever: method.stream<undefined, number>(),
      find: {
        ...method.stream<{ ids: string[] }, string>(),
        errors: { NOT_FOUND: z.object({ id: z.string() }) },
      },
      wait: method.stream<undefined, number>(),
      size: method<undefined, number>(),
    },
    { queue },
  );
}
type Logs = ReturnType<typeof logsService>;

/**
 * The implementation, with hooks a test can watch: `calls` (what ran), and `ended`, which
 * emits the method name with `ctx.signal` when the finally block of `echo` or `forever` runs.
 */
function logsImplementation(
  calls: string[] = [],
  ended = new EventEmitter(),
): ServiceImplementation<Logs> {
  return {
    count: async function* ({ to }, ctx) {
      calls.push(ctx.method);
      for (let n = 0; n < to; n++) yield await Promise.resolve(n);
    },
    lengths: async function* (texts) {
      for (const text of texts) yield await Promise.resolve(text);
    },
    echo: async function* (items, ctx) {
      try {
        for (const item of items) yield await Promise.resolve(item as number);
      } finally {
        calls.push(`${ctx.method} ended`);
        ended.emit(ctx.method, ctx.signal);
      }
    },
    forever: async function* (_input, ctx) {
      try {
        for (let n = 0; ; n++) yield await Promise.resolve(n);
      } finally {
        ended.emit(ctx.method, ctx.signal);
      }
    },
    find: async function* ({ ids }, ctx) {
      for (const id of ids) {
        if (id === '?') throw ctx.error('NOT_FOUND', `no ${id}`, { id });
        yield await Promise.resolve(id);
      }
    },
    wait: async function* (_input, ctx) {
      yield 1;
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    },
    size: () => 3,
  };
}

async function setUp(options: { validateOutput?: boolean } = {}) {
  const rpc = await connectForTest();
  const service = logsService(uniqueQueue('logs'));
  const calls: string[] = [];
  const ended = new EventEmitter();
  await rpc.serve(service, logsImplementation(calls, ended), options);
  return { rpc, service, calls, ended, logs: rpc.client(service) };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** Reads `items` to the end: the items that came, then the RpcError that ended them. */
async function collectUntilError<T>(items: AsyncIterable<T>): Promise<[T[], RpcError]> {
  const all: T[] = [];
  try {
    for await (const item of items) all.push(item);
  } catch (error) {
    assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
    return [all, error];
  }
  assert.fail(`expected an error after ${all.length} items`);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('streaming methods: items', () => {
  test('a streaming method yields its items in order', async () => {
    const { logs, calls } = await setUp();
    assert.deepEqual(await collect(logs.count({ to: 5 })), range(5));
    // More items than the window: the server waits for credit as the client reads.
    assert.deepEqual(await collect(logs.count({ to: 100 }, { window: 4 })), range(100));
    assert.deepEqual(await collect(logs.count({ to: 0 })), []);
    assert.deepEqual(calls, ['count', 'count', 'count']);
  });

  test('unary and streaming methods of one service side by side', async () => {
    const { logs } = await setUp();
    const [size, items] = await Promise.all([logs.size(), collect(logs.count({ to: 3 }))]);
    assert.equal(size, 3);
    assert.deepEqual(items, [0, 1, 2]);
  });

  test('nothing is sent before the first next()', async () => {
    const { logs, calls } = await setUp();
    const unread = logs.count({ to: 3 });
    const read = logs.count({ to: 1 });
    assert.deepEqual(await collect(read), [0]); // the server has answered a later request
    assert.deepEqual(calls, ['count']);
    await unread[Symbol.asyncDispose]();
  });

  test('a client made from a type-only import names its streaming methods', async () => {
    const { rpc, service } = await setUp();
    const streams = {
      count: true,
      lengths: true,
      echo: true,
      forever: true,
      find: true,
      wait: true,
    } as const;
    const logs = rpc.client<Logs>({ name: 'logs', queue: service.queue }, { streams });
    assert.deepEqual(await collect(logs.count({ to: 3 })), [0, 1, 2]);
    assert.equal(await logs.size(), 3);
  });
});

describe('streaming methods: validation', () => {
  test('bad input gets INVALID_ARGUMENT on the first next(), and the handler does not run', async () => {
    const { logs, calls } = await setUp();
    const [items, error] = await collectUntilError(
      logs.count({ to: 'three' } as unknown as { to: number }),
    );
    assert.deepEqual(items, []);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.deepEqual(pathsOf(error), [['to']]);
    assert.deepEqual(calls, []);
  });

  test('validateInput on the client: INVALID_ARGUMENT, and nothing is published', async () => {
    const rpc = await connectForTest();
    const service = logsService(uniqueQueue('logs'));
    let received = 0;
    await rpc.serve(service.queue, async function* () {
      received++;
      yield await Promise.resolve(7);
    });
    const logs = rpc.client(service, { validateInput: true });
    const stream = logs.count({ to: 1.5 });
    await assert.rejects(stream.next(), (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, 'INVALID_ARGUMENT');
      assert.deepEqual(pathsOf(error), [['to']]);
      return true;
    });
    assert.deepEqual(await stream.next(), { value: undefined, done: true }); // thrown once
    assert.deepEqual(await collect(logs.count({ to: 1 })), [7]); // a good input goes out
    assert.equal(received, 1);
  });

  test('validateOutput on the server: a bad item ends the stream with INTERNAL after the good ones', async () => {
    const { logs, calls } = await setUp({ validateOutput: true });
    const [items, error] = await collectUntilError(logs.echo([1, 2, 'three', 4]));
    assert.deepEqual(items, [1, 2]);
    assert.equal(error.code, 'INTERNAL');
    assert.equal((error.details as { issues: unknown[] }).issues.length, 1);
    assert.deepEqual(calls, ['echo ended']); // the handler was stopped: its finally ran
    // Items pass through the schema: its transform applies on the server.
    assert.deepEqual(await collect(logs.lengths(['a', 'bcd'])), [1, 3]);
  });

  test('without validateOutput, the server sends items as they are', async () => {
    const { logs } = await setUp();
    assert.deepEqual(await collect(logs.echo([1, 'two'])), [1, 'two']);
  });

  test('validateOutput on the client: INTERNAL after the good items, and the server stops', async () => {
    const { rpc, service, ended } = await setUp();
    const logs = rpc.client(service, { validateOutput: true });
    const echoEnded = once(ended, 'echo');
    // Endless, so that only the client's cancel can end the handler.
    const items = logs.echo([1, 'two', ...range(10_000)], { window: 2 });
    const [good, error] = await collectUntilError(items);
    assert.deepEqual(good, [1]);
    assert.equal(error.code, 'INTERNAL');
    // The client cancelled the stream: the handler's finally runs on the server.
    const [signal] = (await echoEnded) as [AbortSignal];
    assert.equal((signal.reason as RpcError).code, 'CANCELLED');
    assert.deepEqual(await collect(logs.lengths(['ab', 'c'])), [2, 1]); // transforms apply
  });

  test('a streaming handler that returns no AsyncIterable gets INTERNAL', async () => {
    const rpc = await connectForTest();
    const service = logsService(uniqueQueue('logs'));
    const wrong = {
      ...logsImplementation(),
      count: () => 1,
    } as unknown as ServiceImplementation<Logs>;
    await rpc.serve(service, wrong);
    const [, error] = await collectUntilError(rpc.client(service).count({ to: 1 }));
    assert.equal(error.code, 'INTERNAL');
  });

  test('a unary handler that returns an AsyncIterable gets INTERNAL, and is stopped', async () => {
    const rpc = await connectForTest();
    const service = logsService(uniqueQueue('logs'));
    const wrong = {
      ...logsImplementation(),
      size: async function* () {
        yield await Promise.resolve(1);
      },
    } as unknown as ServiceImplementation<Logs>;
    await rpc.serve(service, wrong);
    await assert.rejects(rpc.client(service).size(), (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, 'INTERNAL');
      return true;
    });
  });
});

describe('streaming methods: cancellation and errors', () => {
  test('breaking out of the loop cancels the generator on the server', async () => {
    const { logs, ended } = await setUp();
    const foreverEnded = once(ended, 'forever');
    const seen: number[] = [];
    for await (const n of logs.forever(undefined, { window: 2 })) {
      seen.push(n);
      if (n === 2) break;
    }
    assert.deepEqual(seen, [0, 1, 2]);
    const [signal] = (await foreverEnded) as [AbortSignal]; // the generator's finally block ran
    assert.ok(signal.aborted);
    assert.ok(signal.reason instanceof RpcError);
    assert.equal(signal.reason.code, 'CANCELLED');
  });

  test('await using: disposing of the stream cancels it too', async () => {
    const { logs, ended } = await setUp();
    const foreverEnded = once(ended, 'forever');
    {
      await using items = logs.forever();
      assert.deepEqual(await items.next(), { value: 0, done: false });
    }
    await foreverEnded;
  });

  test('return() while a next() waits ends that next() too', async () => {
    const { logs } = await setUp();
    const items = logs.wait(); // one item, then nothing until cancelled
    assert.deepEqual(await items.next(), { value: 1, done: false });
    const waiting = items.next();
    await new Promise(setImmediate); // that next() now waits for the server
    await items[Symbol.asyncDispose]();
    assert.deepEqual(await waiting, { value: undefined, done: true });
  });

  test('an unknown method gets UNIMPLEMENTED on the first next()', async () => {
    const { rpc, service } = await setUp();
    // A newer contract with a streaming method the running server does not have.
    const newer = defineService(
      'logs',
      { ...service.methods, tail: method.stream<{ from: number }, string>() },
      { queue: service.queue },
    );
    const [items, error] = await collectUntilError(rpc.client(newer).tail({ from: 0 }));
    assert.deepEqual(items, []);
    assert.equal(error.code, 'UNIMPLEMENTED');
    assert.deepEqual(error.details, { service: 'logs', method: 'tail' });
  });

  test('a declared error ends the stream after the items before it, and narrows', async () => {
    const { logs, service } = await setUp();
    const [items, error] = await collectUntilError(logs.find({ ids: ['a', 'b', '?', 'c'] }));
    assert.deepEqual(items, ['a', 'b']);
    assert.equal(error.code, 'NOT_FOUND');
    assert.ok(isServiceError(error, service, 'find'));
    assert.ok(isServiceError(error, logs, 'find', 'NOT_FOUND'));
    assert.deepEqual(error.details, { id: '?' });
  });

  test('timeoutMs bounds the whole stream: DEADLINE_EXCEEDED after the items so far', async () => {
    const { logs } = await setUp();
    const [items, error] = await collectUntilError(logs.wait(undefined, { timeoutMs: 200 }));
    assert.deepEqual(items, [1]);
    assert.equal(error.code, 'DEADLINE_EXCEEDED');
  });

  test('a stream method called through a client that does not know it streams: FAILED_PRECONDITION', async () => {
    const { rpc, service } = await setUp();
    // A type-only client not told which methods stream makes a unary call: the server refuses.
    const wrong = rpc.client<Logs>(
      { name: 'logs', queue: service.queue },
      { streams: {} as never },
    ) as unknown as { count(input: { to: number }): Promise<unknown> };
    await assert.rejects(wrong.count({ to: 1 }), (error: unknown) => {
      assert.ok(error instanceof RpcError);
      assert.equal(error.code, 'FAILED_PRECONDITION');
      return true;
    });
  });

  test('the method name and the stream window travel as for rpc.stream()', async () => {
    const rpc = await connectForTest();
    const service = logsService(uniqueQueue('logs'));
    const seen = deferred<{ method: string | undefined; window: unknown }>();
    await rpc.serve(service.queue, async function* (_request, ctx: HandlerContext) {
      seen.resolve({ method: ctx.method, window: ctx.headers['rpc-stream-window'] });
      yield await Promise.resolve(1);
    });
    assert.deepEqual(await collect(rpc.client(service).count({ to: 1 }, { window: 5 })), [1]);
    assert.deepEqual(await seen.promise, { method: 'count', window: 5 });
  });
});

describe('streaming methods: the contract', () => {
  test('method.stream() and stream: true', () => {
    assert.deepEqual(method.stream<undefined, number>(), {
      input: typeOnly<undefined>(),
      output: typeOnly<number>(),
      stream: true,
    });
    assert.throws(
      () =>
        defineService('bad', {
          m: { input: typeOnly<undefined>(), output: typeOnly<number>(), stream: 'yes' as never },
        }),
      (error: unknown) => error instanceof RpcError && error.code === 'INVALID_ARGUMENT',
    );
  });
});

function pathsOf(error: RpcError): unknown[][] {
  return (error.details as { issues: { path: unknown[] }[] }).issues.map((issue) => issue.path);
}
