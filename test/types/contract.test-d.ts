// Type-level tests of the service contracts: compiled by `npx tsc --noEmit -p tsconfig.json`.
// Every `@ts-expect-error` line must fail to compile, else tsc reports an unused directive.
import { expectTypeOf } from 'expect-type';
import {
  defineService,
  isServiceError,
  method,
  typeOnly,
  type CallOptions,
  type InferInput,
  type InferOutput,
  type RpcError,
  type RpcConnection,
  type ServiceClient,
  type ServiceContext,
  type ServiceError,
  type ServiceImplementation,
  type ServiceInput,
  type ServiceOutput,
} from '../../src/index.js';
import type { custom, shop } from './fixtures-contract.js';
import { z } from 'zod';

declare const rpc: RpcConnection;
declare const shopValue: typeof shop;
type Shop = typeof shop;

// ---- schema inference -------------------------------------------------------------------
export const toLength = z.string().transform((s) => s.length);
expectTypeOf<InferInput<typeof toLength>>().toEqualTypeOf<string>();
expectTypeOf<InferOutput<typeof toLength>>().toEqualTypeOf<number>();
expectTypeOf<InferInput<ReturnType<typeof typeOnly<{ x: 1 }>>>>().toEqualTypeOf<{ x: 1 }>();

// ---- the contract value ---------------------------------------------------------------
expectTypeOf(shopValue.name).toEqualTypeOf<'shop'>();
expectTypeOf(shopValue.queue).toEqualTypeOf<'rpc.shop'>();
expectTypeOf<(typeof custom)['queue']>().toEqualTypeOf<'q.custom'>();
const none = typeOnly<undefined>();
// @ts-expect-error: error codes come from the closed RpcError set
defineService('bad', { m: { input: none, output: none, errors: { TEAPOT: none } } });
// @ts-expect-error: a method needs an output shape
defineService('bad', { m: { input: typeOnly<undefined>() } });
// @ts-expect-error: a shape must be a Standard Schema or typeOnly<T>()
defineService('bad', { m: { input: { parse: () => 1 }, output: typeOnly<undefined>() } });

// ---- client: input, output, options ---------------------------------------------------------
const client = rpc.client(shopValue);
expectTypeOf(client).toEqualTypeOf<ServiceClient<Shop>>();
expectTypeOf(client.add({ a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
expectTypeOf(client.add)
  .parameter(0)
  .toEqualTypeOf<{ a: number; b: number; note?: string | undefined }>();
expectTypeOf(client.add).parameter(1).toEqualTypeOf<CallOptions | undefined>();
expectTypeOf(client.parse('abc')).toEqualTypeOf<Promise<number>>();
expectTypeOf(client.greet({ name: 'x' })).toEqualTypeOf<Promise<string>>();
expectTypeOf(client.area({ w: 1, h: 2 })).toEqualTypeOf<Promise<number>>();
expectTypeOf(client.ping()).toEqualTypeOf<Promise<'pong'>>();
expectTypeOf(client.echo({ text: 'a' })).resolves.toEqualTypeOf<{ text: string; at: number }>();
expectTypeOf(client.get({ id: '1' })).resolves.toEqualTypeOf<{ id: string; name: string }>();
expectTypeOf<ServiceInput<Shop, 'parse'>>().toEqualTypeOf<string>();
expectTypeOf<ServiceOutput<Shop, 'remove'>>().toEqualTypeOf<boolean>();

void client.add({ a: 1, b: 2 }, { timeoutMs: 100, signal: AbortSignal.timeout(50) });
void client.ping(undefined, { timeoutMs: 100 });
// @ts-expect-error: wrong argument type
void client.add({ a: '1', b: 2 });
// @ts-expect-error: missing field
void client.add({ a: 1 });
// @ts-expect-error: extra field in an object literal
void client.add({ a: 1, b: 2, c: 3 });
// @ts-expect-error: input is required
void client.add();
// @ts-expect-error: parse takes the schema's input type (string), not its output (number)
void client.parse(3);
// @ts-expect-error: valibot input checked
void client.greet({ name: 1 });
// @ts-expect-error: arktype input checked
void client.area({ w: 1 });
// @ts-expect-error: types-only input checked
void client.echo({ txt: 'a' });
// no such method
expectTypeOf(client).not.toHaveProperty('subtract');
// @ts-expect-error: unknown call option
void client.add({ a: 1, b: 2 }, { timeout: 100 });
// @ts-expect-error: timeoutMs is a number
void client.add({ a: 1, b: 2 }, { timeoutMs: '100' });
// @ts-expect-error: the output is a number, not a string
const wrongOutput: Promise<string> = client.add({ a: 1, b: 2 });
void wrongOutput;

// client options
rpc.client(shopValue, { validateInput: true, validateOutput: true, queue: 'elsewhere' });
// @ts-expect-error: unknown client option
rpc.client(shopValue, { validate: true });

// ---- client from a type-only import ---------------------------------------------------
const byName = rpc.client<Shop>('shop');
expectTypeOf(byName).toEqualTypeOf<ServiceClient<Shop>>();
expectTypeOf(byName.add({ a: 1, b: 2 })).toEqualTypeOf<Promise<number>>();
rpc.client<Shop>({ name: 'shop' });
rpc.client<typeof custom>({ name: 'custom', queue: 'q.custom' });
// @ts-expect-error: the name must be the contract's
rpc.client<Shop>('shopp');
// @ts-expect-error: a contract with its own queue must be named with it
rpc.client<typeof custom>('custom');
// @ts-expect-error: ... and the queue must be the contract's
rpc.client<typeof custom>({ name: 'custom', queue: 'q.other' });
// @ts-expect-error: without the contract type there is no typed client
rpc.client('shop');

// ---- server: implementation types -----------------------------------------------------
const impl: ServiceImplementation<Shop> = {
  add: ({ a, b, note }) => {
    expectTypeOf(note).toEqualTypeOf<string | undefined>();
    return a + b;
  },
  parse: (length, ctx) => {
    expectTypeOf(length).toEqualTypeOf<number>(); // the handler sees the transformed value
    expectTypeOf(ctx.method).toEqualTypeOf<'parse'>();
    expectTypeOf(ctx.service).toEqualTypeOf<'shop'>();
    expectTypeOf(ctx.signal).toEqualTypeOf<AbortSignal>();
    return length;
  },
  greet: async ({ name }) => Promise.resolve(`hi ${name}`),
  area: ({ w, h }) => w * h,
  ping: () => 'pong',
  echo: ({ text }) => ({ text, at: Date.now() }),
  get: ({ id }, ctx) => {
    if (id === 'locked') throw ctx.error('FAILED_PRECONDITION', 'locked', { reason: 'locked' });
    if (id === '') {
      // @ts-expect-error: details must have the declared shape
      throw ctx.error('NOT_FOUND', 'no such id', { name: id });
    }
    if (id === '?') {
      // @ts-expect-error: only declared codes
      throw ctx.error('ABORTED', 'nope', {});
    }
    expectTypeOf(ctx.error('NOT_FOUND', 'no', { id })).toEqualTypeOf<
      RpcError & { readonly code: 'NOT_FOUND'; readonly details: { id: string } }
    >();
    throw ctx.error('NOT_FOUND', 'no such id', { id });
  },
  remove: () => true,
};
void rpc.serve(shopValue, impl, { prefetch: 5, validateOutput: true, queue: 'x' });
export const wrongOutputImpl: ServiceImplementation<Shop> = {
  ...impl,
  // @ts-expect-error: the handler must return the declared output
  add: () => 'three',
};
export const wrongInputImpl: ServiceImplementation<Shop> = {
  ...impl,
  // @ts-expect-error: the handler's input is typed: no such field
  add: ({ c }: { c: number }) => c,
};
// @ts-expect-error: a wrong handler fails at the serve() call too
void rpc.serve(shopValue, { ...impl, greet: ({ name }: { name: number }) => name });
// @ts-expect-error: every method must be implemented
void rpc.serve(shopValue, { add: () => 1 });
// @ts-expect-error: unknown serve option
void rpc.serve(shopValue, impl, { validate: true });
// the plain overload still works
void rpc.serve('queue', (request: { n: number }) => request.n * 2);
expectTypeOf<ServiceContext<Shop, 'add'>['method']>().toEqualTypeOf<'add'>();

// ---- typed errors -----------------------------------------------------------------------
type GetError = ServiceError<Shop, 'get'>;
expectTypeOf<GetError['code']>().toEqualTypeOf<'NOT_FOUND' | 'FAILED_PRECONDITION'>();
expectTypeOf<ServiceError<Shop, 'add'>>().toBeNever();

declare const caught: unknown;
if (isServiceError(caught, shopValue, 'get')) {
  expectTypeOf(caught).toEqualTypeOf<GetError>();
  expectTypeOf<GetError>().toExtend<RpcError>(); // a declared error is an RpcError
  if (caught.code === 'NOT_FOUND') {
    expectTypeOf(caught.details).toEqualTypeOf<{ id: string }>();
  } else {
    expectTypeOf(caught.code).toEqualTypeOf<'FAILED_PRECONDITION'>();
    expectTypeOf(caught.details).toEqualTypeOf<{ reason: 'locked' | 'deleted' }>();
  }
}
if (isServiceError(caught, client, 'remove', 'PERMISSION_DENIED')) {
  expectTypeOf(caught.details).toEqualTypeOf<{ role: string }>();
}
if (isServiceError(caught, byName, 'get', 'NOT_FOUND')) {
  expectTypeOf(caught.details.id).toEqualTypeOf<string>();
}
// @ts-expect-error: a code the method does not declare
isServiceError(caught, shopValue, 'get', 'ABORTED');
// @ts-expect-error: a method the service does not have
isServiceError(caught, shopValue, 'nope');

// ---- method() and typeOnly() ------------------------------------------------------------
export const m = method<{ a: 1 }, 'b'>();
expectTypeOf<InferInput<typeof m.input>>().toEqualTypeOf<{ a: 1 }>();
expectTypeOf<InferOutput<typeof m.output>>().toEqualTypeOf<'b'>();

// ---- inline implementations keep literal outputs ------------------------------------------
const lit = defineService('lit', {
  ping: method<undefined, 'pong'>(),
  status: method<{ id: string }, { st: 'ok' | 'down' }>(),
});
void rpc.serve(lit, {
  ping: () => 'pong',
  status: async ({ id }, ctx) => {
    expectTypeOf(id).toEqualTypeOf<string>();
    expectTypeOf(ctx.method).toEqualTypeOf<'status'>();
    await Promise.resolve();
    return { st: 'ok' };
  },
});
// An async handler returning a bare literal needs `as const` (a TypeScript limitation).
void rpc.serve(lit, {
  ping: async () => Promise.resolve('pong' as const),
  status: () => ({ st: 'down' }),
});
// @ts-expect-error: not one of the declared literals
void rpc.serve(lit, { ping: () => 'pong', status: () => ({ st: 'up' }) });
// @ts-expect-error: a method the contract does not have
void rpc.serve(lit, { ping: () => 'pong', status: () => ({ st: 'ok' }), extra: () => 1 });
