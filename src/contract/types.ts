import type { RpcError, RpcErrorCode } from '../errors.js';
import type { CallOptions, StreamOptions } from '../options/call.js';
import type { HandlerContext } from '../handler.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/** The run-time mark of {@link typeOnly} shapes. */
export const TYPE_ONLY_MARK = '~rabbitRpcTypeOnly';
/** The run-time mark of service definitions. */
export const SERVICE_MARK = '~rabbitRpcService';

/**
 * A shape known only to the compiler: values of type `T`, checked at compile time and
 * never at run time. Made by {@link typeOnly}.
 */
export interface TypeOnly<T> {
  readonly [TYPE_ONLY_MARK]: true;
  /** Phantom: carries `T`; never set. */
  readonly '~type'?: T;
}

/** What describes a value in a contract: a Standard Schema, or a types-only shape. */
export type Shape<T = unknown> = StandardSchemaV1<unknown, T> | TypeOnly<T>;

/** The type a shape accepts (a schema's input type; before transforms). */
export type InferInput<S> = S extends StandardSchemaV1
  ? NonNullable<S['~standard']['types']>['input']
  : S extends TypeOnly<infer T>
    ? T
    : never;

/** The type a shape produces (a schema's output type; after transforms). */
export type InferOutput<S> = S extends StandardSchemaV1
  ? NonNullable<S['~standard']['types']>['output']
  : S extends TypeOnly<infer T>
    ? T
    : never;

/** Error codes a method may throw on purpose, each with the shape of its `details`. */
export type ErrorSpecs = { readonly [C in RpcErrorCode]?: Shape };

/** One method of a contract. */
export interface MethodSpec {
  /** The request: what the client sends and the server validates before the handler runs. */
  readonly input: Shape;
  /**
   * The reply: what the handler returns (validated by option). For a streaming method, the
   * shape of each item.
   */
  readonly output: Shape;
  /** The application errors the method declares; the client sees them typed. */
  readonly errors?: ErrorSpecs;
  /**
   * The method is safe to run more than once: clients made from the contract value call it
   * with `idempotent: true` unless the call says otherwise (see `CallOptions.idempotent`).
   * @default false
   */
  readonly idempotent?: boolean;
  /**
   * `true`: the method streams its reply. The handler returns an AsyncIterable of items (an
   * async generator fits) and the client gets an AsyncIterable of them, in order.
   * @default false
   */
  readonly stream?: boolean;
}

/** The methods of a contract, by name. */
export type MethodSpecs = Readonly<Record<string, MethodSpec>>;

/** A contract: made by {@link defineService}, shared by client and server. */
export interface ServiceDefinition<
  TName extends string = string,
  TMethods extends MethodSpecs = MethodSpecs,
  TQueue extends string = string,
> {
  readonly [SERVICE_MARK]: true;
  /** The service name. */
  readonly name: TName;
  /** The queue its server consumes: `rpc.<name>` unless the contract chose another. */
  readonly queue: TQueue;
  /** The method specs, by name. */
  readonly methods: TMethods;
}

/** Any contract. */
export type AnyService = ServiceDefinition;

/** The method names of service `S`. */
export type MethodName<S extends AnyService> = keyof S['methods'] & string;

type Spec<S extends AnyService, M extends MethodName<S>> = S['methods'][M] extends MethodSpec
  ? S['methods'][M]
  : never;

/** The names of the methods of `S` that stream their reply (`stream: true`). */
export type StreamMethodName<S extends AnyService> = {
  [M in MethodName<S>]: IsStreamMethod<S, M> extends true ? M : never;
}[MethodName<S>];

/** `true` when method `M` of `S` streams its reply. */
export type IsStreamMethod<S extends AnyService, M extends MethodName<S>> =
  Spec<S, M> extends { readonly stream: true } ? true : false;

/** What a client passes to method `M` (the input schema's input type). */
export type ServiceInput<S extends AnyService, M extends MethodName<S>> = InferInput<
  Spec<S, M>['input']
>;
/** What the handler of `M` receives (the input schema's output type, after validation). */
export type ServiceHandlerInput<S extends AnyService, M extends MethodName<S>> = InferOutput<
  Spec<S, M>['input']
>;
/** What the handler of `M` returns (the output schema's input type); for a stream, each item. */
export type ServiceHandlerOutput<S extends AnyService, M extends MethodName<S>> = InferInput<
  Spec<S, M>['output']
>;
/**
 * What a client's call of `M` resolves to (the output schema's output type); for a stream,
 * each item.
 */
export type ServiceOutput<S extends AnyService, M extends MethodName<S>> = InferOutput<
  Spec<S, M>['output']
>;

/** The declared errors of `M`, by code; `never` when it declares none. */
export type ServiceErrorSpecs<S extends AnyService, M extends MethodName<S>> =
  Spec<S, M> extends { readonly errors: infer E } ? (E extends ErrorSpecs ? E : never) : never;

/** The codes `M` declares (`never` when none). */
export type ServiceErrorCode<S extends AnyService, M extends MethodName<S>> = [
  ServiceErrorSpecs<S, M>,
] extends [never]
  ? never
  : keyof ServiceErrorSpecs<S, M> & RpcErrorCode;

/** The `details` declared for error `C` of method `M`. */
export type ServiceErrorDetails<
  S extends AnyService,
  M extends MethodName<S>,
  C extends ServiceErrorCode<S, M>,
> = InferOutput<ServiceErrorSpecs<S, M>[C]>;

/**
 * A declared error of method `M`: an {@link RpcError} whose `code` is one of the codes `M`
 * declares and whose `details` has the declared shape, as a union discriminated by `code`.
 * `never` when `M` declares no errors. Narrow to it with `isServiceError`.
 */
export type ServiceError<
  S extends AnyService,
  M extends MethodName<S>,
  C extends ServiceErrorCode<S, M> = ServiceErrorCode<S, M>,
> = {
  [K in C]: RpcError & { readonly code: K; readonly details: ServiceErrorDetails<S, M, K> };
}[C];

/**
 * The arguments of a client method: the input (optional when it may be undefined), then
 * options (`StreamOptions` for a streaming method).
 */
export type ServiceCallArgs<I, TOptions = CallOptions> = undefined extends I
  ? [input?: I, options?: TOptions]
  : [input: I, options?: TOptions];

/**
 * The typed client of service `S`: one function per method. A unary method returns a
 * promise of its output; a streaming method returns its items as an AsyncIterable (the
 * request is sent on the first `next()`; leaving the loop early cancels it on the server).
 */
export type ServiceClient<S extends AnyService> = {
  readonly [M in MethodName<S>]: IsStreamMethod<S, M> extends true
    ? (
        ...args: ServiceCallArgs<ServiceInput<S, M>, StreamOptions>
      ) => AsyncIterableIterator<ServiceOutput<S, M>> & AsyncDisposable
    : (...args: ServiceCallArgs<ServiceInput<S, M>>) => Promise<ServiceOutput<S, M>>;
};

/** The handler's context for method `M`: the core context plus a typed error factory. */
export interface ServiceContext<
  S extends AnyService,
  M extends MethodName<S>,
> extends HandlerContext {
  /** The method this request calls. */
  readonly method: M;
  /** The service this request calls. */
  readonly service: S['name'];
  /**
   * Makes a declared error of this method, to `throw`: the code must be one the method
   * declares and `details` must have its declared shape.
   */
  error<C extends ServiceErrorCode<S, M>>(
    code: C,
    message: string,
    ...details: undefined extends ServiceErrorDetails<S, M, C>
      ? [details?: ServiceErrorDetails<S, M, C>]
      : [details: ServiceErrorDetails<S, M, C>]
  ): ServiceError<S, M, C>;
}

/**
 * A server's implementation of service `S`: one handler per method. A unary handler returns
 * (or resolves to) the output; a streaming handler returns an AsyncIterable of items (an
 * async generator function fits; not a promise of one, so that yields keep literal types).
 */
export type ServiceImplementation<S extends AnyService> = {
  readonly [M in MethodName<S>]: (
    input: ServiceHandlerInput<S, M>,
    ctx: ServiceContext<S, M>,
  ) => IsStreamMethod<S, M> extends true
    ? AsyncIterable<ServiceHandlerOutput<S, M>>
    : ServiceHandlerOutput<S, M> | PromiseLike<ServiceHandlerOutput<S, M>>;
};

/** A validation problem as it travels in error `details.issues`. */
export interface ValidationIssue {
  /** The validator's message. */
  readonly message: string;
  /** Keys from the root of the value to the problem; empty for the value itself. */
  readonly path: readonly (string | number)[];
}

/** Maps every key of `TImpl` that is not a method of `S` to `never`, so extra methods fail to compile. */
export type NoExtraMethods<TImpl, S extends AnyService> = {
  readonly [K in Exclude<keyof TImpl, MethodName<S>>]: never;
};
