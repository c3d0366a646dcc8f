import { Buffer } from 'node:buffer';
import { RpcError, isRpcErrorCode } from '../errors.js';
import { checkQueueName } from '../options/call.js';
import { checkOptionNames, optionNames } from '../option-names.js';
import {
  SERVICE_MARK,
  TYPE_ONLY_MARK,
  type AnyService,
  type MethodSpecs,
  type ServiceDefinition,
  type Shape,
  type TypeOnly,
} from './types.js';

/** Options of {@link defineService}. */
export interface DefineServiceOptions<TQueue extends string = string> {
  /** The queue the service's server consumes. @default `rpc.${name}` */
  readonly queue?: TQueue;
}

const DEFINE_OPTION_NAMES = optionNames({ queue: true } satisfies Record<
  keyof DefineServiceOptions,
  true
>);

const TYPE_ONLY: TypeOnly<never> = Object.freeze({ [TYPE_ONLY_MARK]: true as const });

/**
 * A shape checked by the compiler only: `typeOnly<{ id: string }>()` wherever a schema may
 * go (input, output, error details). Nothing is validated at run time.
 */
export function typeOnly<T>(): TypeOnly<T> {
  return TYPE_ONLY;
}

/**
 * A method typed without schemas: `method<{ a: number; b: number }, number>()`. To declare
 * errors too, spread it: `{ ...method<In, Out>(), errors: { NOT_FOUND: typeOnly<{ id: string }>() } }`.
 */
export function method<TInput, TOutput>(): {
  readonly input: TypeOnly<TInput>;
  readonly output: TypeOnly<TOutput>;
} {
  return { input: TYPE_ONLY, output: TYPE_ONLY };
}

/**
 * A streaming method typed without schemas: `method.stream<{ from: number }, LogLine>()`,
 * short for `{ input: typeOnly<In>(), output: typeOnly<Item>(), stream: true }`. `output`
 * is the type of each item.
 */
method.stream = function streamMethod<TInput, TItem>(): {
  readonly input: TypeOnly<TInput>;
  readonly output: TypeOnly<TItem>;
  readonly stream: true;
} {
  return { input: TYPE_ONLY, output: TYPE_ONLY, stream: true };
};

/**
 * Defines a service contract: a value shared by client and server (a client may import
 * only its type). Each method has an `input` and an `output` shape (a Standard Schema such
 * as a zod, valibot or arktype schema, or {@link typeOnly}) and may declare `errors`. A
 * method with `stream: true` streams its reply: `output` is then the shape of each item.
 *
 * @example
 * ```ts
 * export const math = defineService('math', {
 *   add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
 *   ping: method<void, 'pong'>(),
 *   count: { input: z.number(), output: z.number(), stream: true },
 * });
 * ```
 * @throws RpcError INVALID_ARGUMENT for a bad name, queue, method name or shape.
 */
export function defineService<
  const TName extends string,
  const TMethods extends MethodSpecs,
  const TQueue extends string = `rpc.${TName}`,
>(
  name: TName,
  methods: TMethods,
  options: DefineServiceOptions<TQueue> = {},
): ServiceDefinition<TName, TMethods, TQueue> {
  checkOptionNames(options, DEFINE_OPTION_NAMES, 'defineService()');
  if (typeof name !== 'string' || name.length === 0) {
    invalid(`service name must be a non-empty string; got ${JSON.stringify(name)}`);
  }
  const queue = options.queue ?? `rpc.${name}`;
  checkQueueName(queue);
  const untrusted: unknown = methods; // JavaScript callers can pass anything
  if (typeof untrusted !== 'object' || untrusted === null) invalid('methods must be an object');
  for (const [methodName, spec] of Object.entries(untrusted)) {
    checkMethod(name, methodName, spec);
  }
  return Object.freeze({
    [SERVICE_MARK]: true as const,
    name,
    queue: queue as TQueue,
    methods: Object.freeze({ ...methods }),
  });
}

/** True when `value` is a contract made by {@link defineService}. */
export function isServiceDefinition(value: unknown): value is AnyService {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Partial<Record<string, unknown>>)[SERVICE_MARK] === true
  );
}

/** True when the shape is a Standard Schema (false for {@link typeOnly} shapes). */
export function isSchema(shape: Shape): shape is Exclude<Shape, TypeOnly<unknown>> {
  return !(TYPE_ONLY_MARK in shape);
}

function checkMethod(service: string, name: string, spec: unknown): void {
  const where = `${service}.${name}`;
  if (name.length === 0 || Buffer.byteLength(name) > 255) {
    invalid(`method names must be 1 to 255 bytes (they travel in the AMQP type property)`);
  }
  // A client proxy with a `then` method would be mistaken for a promise by `await`.
  if (name === 'then') invalid(`${where}: "then" cannot be a method name`);
  if (typeof spec !== 'object' || spec === null) invalid(`${where} must be a method spec object`);
  const { input, output, errors, idempotent, stream } = spec as Partial<Record<string, unknown>>;
  checkShape(`${where}.input`, input);
  checkShape(`${where}.output`, output);
  if (idempotent !== undefined && typeof idempotent !== 'boolean') {
    invalid(`${where}.idempotent must be true or false`);
  }
  if (stream !== undefined && typeof stream !== 'boolean') {
    invalid(`${where}.stream must be true, false or absent`);
  }
  if (errors === undefined) return;
  if (typeof errors !== 'object' || errors === null) invalid(`${where}.errors must be an object`);
  for (const [code, shape] of Object.entries(errors)) {
    if (!isRpcErrorCode(code)) invalid(`${where}.errors: "${code}" is not an RpcError code`);
    checkShape(`${where}.errors.${code}`, shape);
  }
}

function checkShape(where: string, shape: unknown): void {
  if (typeof shape !== 'object' && typeof shape !== 'function') {
    invalid(`${where} must be a Standard Schema or typeOnly<T>()`);
  }
  if (shape === null) invalid(`${where} must be a Standard Schema or typeOnly<T>()`);
  if (TYPE_ONLY_MARK in shape) return;
  const standard = (shape as Partial<Record<string, unknown>>)['~standard'];
  if (
    typeof standard !== 'object' ||
    standard === null ||
    typeof (standard as Partial<Record<string, unknown>>)['validate'] !== 'function'
  ) {
    invalid(`${where} must be a Standard Schema (v1) or typeOnly<T>()`);
  }
}

function invalid(message: string): never {
  throw new RpcError('INVALID_ARGUMENT', message);
}
