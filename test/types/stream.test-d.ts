// Type-level tests of streaming methods in service contracts: compiled by
// `npx tsc --noEmit -p tsconfig.json`. Every `@ts-expect-error` line must fail to compile.
/* eslint-disable @typescript-eslint/require-await -- short generators; await is beside the point */
import { expectTypeOf } from 'expect-type';
import { z } from 'zod';
import {
  defineService,
  isServiceError,
  method,
  typeOnly,
  type CallOptions,
  type IsStreamMethod,
  type RpcConnection,
  type ServiceImplementation,
  type ServiceOutput,
  type StreamMethodName,
  type StreamOptions,
  type TypeOnly,
} from '../../src/index.js';

declare const rpc: RpcConnection;

const Line = z.object({ line: z.string(), n: z.number() });
type Line = z.infer<typeof Line>;

export const logs = defineService('logs', {
  // zod: the output shape is the shape of each item
  tail: { input: z.object({ from: z.number() }), output: Line, stream: true },
  // a transforming item schema: the handler yields strings, the client reads numbers
  lengths: { input: z.string(), output: z.string().transform((s) => s.length), stream: true },
  // types only
  count: method.stream<{ to: number }, number>(),
  ticks: method.stream<undefined, 'tick'>(),
  // with declared errors
  guarded: {
    ...method.stream<{ id: string }, string>(),
    errors: { NOT_FOUND: typeOnly<{ id: string }>() },
  },
  // a unary method next to them
  size: method<undefined, number>(),
});
type Logs = typeof logs;
type Stream<T> = AsyncIterableIterator<T> & AsyncDisposable;

// ---- the contract ---------------------------------------------------------------------------
expectTypeOf(method.stream<{ a: 1 }, 'b'>()).toEqualTypeOf<{
  readonly input: TypeOnly<{ a: 1 }>;
  readonly output: TypeOnly<'b'>;
  readonly stream: true;
}>();
expectTypeOf<StreamMethodName<Logs>>().toEqualTypeOf<
  'tail' | 'lengths' | 'count' | 'ticks' | 'guarded'
>();
expectTypeOf<IsStreamMethod<Logs, 'size'>>().toEqualTypeOf<false>();
expectTypeOf<ServiceOutput<Logs, 'tail'>>().toEqualTypeOf<Line>(); // the item type
const none = typeOnly<undefined>();
// @ts-expect-error: stream is a boolean
defineService('bad', { m: { input: none, output: none, stream: 'yes' } });

// ---- client: item types, options, not a promise ----------------------------------------------
const client = rpc.client(logs);
expectTypeOf(client.tail({ from: 0 })).toEqualTypeOf<Stream<Line>>();
expectTypeOf(client.lengths('abc')).toEqualTypeOf<Stream<number>>(); // the schema's output
expectTypeOf(client.count({ to: 3 })).toEqualTypeOf<Stream<number>>();
expectTypeOf(client.ticks()).toEqualTypeOf<Stream<'tick'>>();
expectTypeOf(client.size()).toEqualTypeOf<Promise<number>>();
expectTypeOf(client.tail).parameter(1).toEqualTypeOf<StreamOptions | undefined>();
expectTypeOf(client.size).parameter(1).toEqualTypeOf<CallOptions | undefined>();
expectTypeOf(client.tail({ from: 0 })).not.toExtend<PromiseLike<unknown>>();

export async function readItems(
  signal: AbortSignal,
  parent: { deadline: number; signal: AbortSignal },
) {
  for await (const item of client.tail({ from: 0 }, { window: 8, timeoutMs: 5_000, signal })) {
    expectTypeOf(item).toEqualTypeOf<Line>();
  }
  for await (const n of client.lengths('abc', { parent, headers: { trace: 'x' } })) {
    expectTypeOf(n).toEqualTypeOf<number>();
  }
  await using ticks = client.ticks();
  const first = await ticks.next();
  if (first.done !== true) expectTypeOf(first.value).toEqualTypeOf<'tick'>();

  // @ts-expect-error: a stream is not a promise of its items
  const all: Line[] = await client.tail({ from: 0 }); // eslint-disable-line @typescript-eslint/await-thenable
  expectTypeOf(all).toBeArray();
  // @ts-expect-error: ...and not a promise at all
  const promised: Promise<Line> = client.tail({ from: 0 });
  void promised;
  // @ts-expect-error: input checked
  void client.tail({ from: '0' });
  // @ts-expect-error: input required
  void client.count();
  // @ts-expect-error: window is a number
  void client.tail({ from: 0 }, { window: '8' });
  // @ts-expect-error: window is a stream option only
  void client.size(undefined, { window: 8 });
  // @ts-expect-error: the item is a Line, not a string
  for await (const item of client.tail({ from: 0 })) expectTypeOf(item).toEqualTypeOf<string>();
}

// ---- typed errors -------------------------------------------------------------------------------
declare const caught: unknown;
if (isServiceError(caught, client, 'guarded', 'NOT_FOUND')) {
  expectTypeOf(caught.details).toEqualTypeOf<{ id: string }>();
}

// ---- client from a type-only import: the streaming methods are named at run time -----------------
const streams = { tail: true, lengths: true, count: true, ticks: true, guarded: true } as const;
const byName = rpc.client<Logs>('logs', { streams });
expectTypeOf(byName.tail({ from: 0 })).toEqualTypeOf<Stream<Line>>();
expectTypeOf(byName.size()).toEqualTypeOf<Promise<number>>();
// @ts-expect-error: a contract with streaming methods needs them named
rpc.client<Logs>('logs');
// @ts-expect-error: every streaming method
rpc.client<Logs>('logs', { streams: { tail: true } });
// @ts-expect-error: only streaming methods
rpc.client<Logs>('logs', { streams: { ...streams, size: true } });

// ---- server: a streaming handler returns an AsyncIterable of items ---------------------------------
const impl: ServiceImplementation<Logs> = {
  tail: async function* ({ from }, ctx) {
    expectTypeOf(from).toEqualTypeOf<number>();
    expectTypeOf(ctx.method).toEqualTypeOf<'tail'>();
    expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
    await Promise.resolve();
    yield { line: 'a', n: from };
  },
  lengths: async function* (text) {
    yield text; // the item schema's input type (a string)
  },
  count: ({ to }) => numbers(to), // any AsyncIterable, not only a generator function
  ticks: async function* () {
    yield 'tick'; // contextually typed: stays the literal
  },
  guarded: async function* ({ id }, ctx) {
    if (id === '') throw ctx.error('NOT_FOUND', 'no such id', { id });
    yield id;
  },
  size: () => 3,
};
void rpc.serve(logs, impl, { validateOutput: true });
async function* numbers(to: number) {
  for (let n = 0; n < to; n++) yield await Promise.resolve(n);
}

// Inline implementations: yields keep their literal types.
void rpc.serve(logs, {
  ...impl,
  ticks: async function* () {
    yield 'tick';
  },
});

export const unaryForStream: ServiceImplementation<Logs> = {
  ...impl,
  // @ts-expect-error: a streaming method cannot reply once
  count: ({ to }) => to,
};
export const wrongItems: ServiceImplementation<Logs> = {
  ...impl,
  // @ts-expect-error: items must have the declared item type
  count: async function* () {
    yield 'one';
  },
};
export const promisedStream: ServiceImplementation<Logs> = {
  ...impl,
  // @ts-expect-error: an AsyncIterable, not a promise of one
  count: async ({ to }) => Promise.resolve(numbers(to)),
};
export const streamForUnary: ServiceImplementation<Logs> = {
  ...impl,
  // @ts-expect-error: a unary method cannot return an AsyncIterable
  size: async function* () {
    yield 3;
  },
};
// @ts-expect-error: the same at the serve() call
void rpc.serve(logs, { ...impl, tail: () => ({ line: 'a', n: 1 }) });
// @ts-expect-error: a wrong item type at the serve() call
void rpc.serve(logs, {
  ...impl,
  count: async function* () {
    yield 'x';
  },
});
