import { Logger } from '@nestjs/common';
import { Server, type CustomTransportStrategy, type MessageHandler } from '@nestjs/microservices';
import {
  connect,
  RpcError,
  type AnyService,
  type ConnectOptions,
  type ConnectionState,
  type HandlerContext,
  type RpcConnection,
  type RpcServer,
  type ServeInterceptor,
  type ServeOptions,
} from '../index.js';
import { RabbitRpcContext, type RabbitRpcWire } from './context.js';
import { isNestEnvelope, type NestReply } from './envelope.js';
import { NEST_UNKNOWN_MESSAGE, toRpcError } from './errors.js';
import { asObservableOrValue, lastValue, toAsyncIterable } from './observable.js';

/** The serve options the strategy passes on to `rpc.serve` (see `ServeOptions`). */
export type RabbitRpcServeOptions = Omit<ServeOptions, 'interceptors'> & {
  /** Serve interceptors, run around the Nest pipeline (outermost first). */
  interceptors?: readonly ServeInterceptor[];
};

/** Options of {@link RabbitRpcStrategy}. */
export interface RabbitRpcStrategyOptions extends RabbitRpcServeOptions {
  /**
   * The queue to consume. Required without `service`; with one, defaults to the
   * contract's queue (`rpc.<name>`).
   */
  queue?: string;
  /**
   * The broker: a URL (or several), or full `ConnectOptions`. The strategy opens its own
   * connection on `listen()` and closes it on `close()`. Ignored when `connection` is given.
   */
  url?: string | readonly string[] | ConnectOptions | undefined;
  /**
   * A connection to serve on (from `RabbitRpcModule`, say). The strategy then closes only
   * its server, never the connection: its owner does.
   */
  connection?: RpcConnection;
  /**
   * A contract (`defineService`): each method is dispatched to the `@MessagePattern` of the
   * same name, inputs are validated (INVALID_ARGUMENT), methods outside it are UNIMPLEMENTED.
   * `listen()` fails when a method has no handler.
   */
  service?: AnyService;
  /** With `service`: validate replies against the output schemas (INTERNAL on mismatch). @default false */
  validateOutput?: boolean;
  /**
   * Also answer requests in the envelope of Nest's RMQ transport (`ClientRMQ`) on the same
   * queue, in that envelope, so Nest clients keep working while servers move. @default true
   */
  nestEnvelope?: boolean;
}

/** Nest's transport id of this strategy (`ctx.getType()` stays 'rpc'). */
const TRANSPORT_ID = Symbol.for('rabbit-rpc');

/** Options of the strategy itself, not passed on to `rpc.serve`. */
const STRATEGY_ONLY: ReadonlySet<string> = new Set([
  'queue',
  'url',
  'connection',
  'service',
  'validateOutput',
  'nestEnvelope',
  'interceptors',
]);

/** The header a rabbit-rpc caller sends when it reads a streamed reply (docs/protocol.md). */
const STREAM_WINDOW_HEADER = 'rpc-stream-window';

/** Statuses emitted on `strategy.status`: the rabbit-rpc connection state. */
export type RabbitRpcStatus = ConnectionState;

/** Events of `strategy.on(...)`. */
// A type literal, not an interface: Nest's Server wants a Record of functions.
export type RabbitRpcEvents = {
  state: (state: ConnectionState) => void;
};

/**
 * A Nest custom transport strategy over rabbit-rpc:
 *
 * ```ts
 * app.connectMicroservice({ strategy: new RabbitRpcStrategy({ url, queue: 'math', prefetch: 10 }) });
 * ```
 *
 * A `@MessagePattern('add')` handler answers requests whose AMQP `type` is `add` on the
 * strategy's queue: exactly a typed service call (docs/contracts.md), so any rabbit-rpc
 * client, the CLI (`call --method add`) or a plain AMQP client calls it. `@EventPattern`
 * handlers run for requests that expect no reply. Requests in Nest's RMQ envelope are
 * answered in kind (`nestEnvelope`).
 */
export class RabbitRpcStrategy
  extends Server<RabbitRpcEvents, RabbitRpcStatus>
  implements CustomTransportStrategy
{
  readonly #options: RabbitRpcStrategyOptions;
  readonly #log = new Logger('RabbitRpcStrategy');
  #connection: RpcConnection | undefined;
  #server: RpcServer | undefined;
  #unwatch: (() => void) | undefined;
  readonly #stateListeners: Array<(state: ConnectionState) => void> = [];
  #warnedAboutFilter = false;

  constructor(options: RabbitRpcStrategyOptions) {
    super();
    if (options.queue === undefined && options.service === undefined) {
      throw new RpcError('INVALID_ARGUMENT', 'RabbitRpcStrategy needs a queue or a service');
    }
    this.#options = options;
    this.transportId = TRANSPORT_ID;
  }

  /** The queue this strategy consumes. */
  get queue(): string {
    return this.#options.queue ?? (this.#options.service as AnyService).queue;
  }

  /** Connects (unless given a connection), then consumes the queue. */
  listen(callback: (error?: unknown) => void): void {
    this.#start().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  async #start(): Promise<void> {
    const { connection, url } = this.#options;
    const rpc =
      connection ??
      (await connect(
        typeof url === 'string' || Array.isArray(url)
          ? { url }
          : (url as ConnectOptions | undefined),
      ));
    this.#connection = rpc;
    this._status$.next(rpc.state);
    this.#unwatch = rpc.onStateChange((state) => {
      this._status$.next(state);
      for (const listener of this.#stateListeners) listener(state);
    });
    const options = this.#serveOptions();
    const service = this.#options.service;
    try {
      this.#server = service
        ? await rpc.serve(service, this.#implementation(service), {
            ...options,
            queue: this.queue,
            ...(this.#options.validateOutput === undefined
              ? {}
              : { validateOutput: this.#options.validateOutput }),
          })
        : await rpc.serve(
            this.queue,
            (request, ctx) => this.#dispatchByType(request, ctx),
            options,
          );
    } catch (error) {
      if (!connection) await rpc.close();
      throw error;
    }
  }

  /** Only documented serve options reach `rpc.serve`, plus the envelope bridge. */
  #serveOptions(): ServeOptions {
    const { nestEnvelope = true, interceptors = [] } = this.#options;
    const serve = Object.fromEntries(
      Object.entries(this.#options).filter(([key]) => !STRATEGY_ONLY.has(key)),
    ) as ServeOptions;
    const bridge: ServeInterceptor[] = nestEnvelope ? [this.#envelopeBridge()] : [];
    return { ...serve, interceptors: [...interceptors, ...bridge] };
  }

  /** One function per contract method, each dispatching to the Nest handler of that pattern. */
  #implementation(
    service: AnyService,
  ): Record<string, (input: unknown, ctx: HandlerContext) => unknown> {
    const implementation: Record<string, (input: unknown, ctx: HandlerContext) => unknown> = {};
    const missing: string[] = [];
    for (const [method, spec] of Object.entries(service.methods)) {
      if (!this.getHandlerByPattern(method)) missing.push(method);
      implementation[method] = (input, ctx) =>
        this.#dispatch(method, input, ctx, spec.stream === true, wireOf(ctx));
    }
    if (missing.length > 0) {
      throw new RpcError(
        'INVALID_ARGUMENT',
        `service "${service.name}" has no @MessagePattern handler for ${missing.map((m) => `"${m}"`).join(', ')}`,
      );
    }
    return implementation;
  }

  /** Without a contract: the AMQP `type` names the pattern. */
  #dispatchByType(request: unknown, ctx: HandlerContext): Promise<unknown> {
    const pattern = ctx.method;
    if (pattern === undefined) {
      return Promise.reject(
        new RpcError(
          'UNIMPLEMENTED',
          `queue "${ctx.queue}" needs the pattern in the AMQP type property`,
          {
            details: { queue: ctx.queue, method: null },
          },
        ),
      );
    }
    const streamed = ctx.headers[STREAM_WINDOW_HEADER] !== undefined;
    return this.#dispatch(pattern, request, ctx, streamed, wireOf(ctx));
  }

  /**
   * Runs the Nest handler of `pattern` (its guards, pipes, interceptors and filters run
   * inside it) and turns its Observable into the reply: the last value for a call, every
   * value for a streamed call. Event handlers run to their end and reply nothing useful.
   */
  async #dispatch(
    pattern: string,
    data: unknown,
    ctx: HandlerContext,
    streamed: boolean,
    wire: RabbitRpcWire,
  ): Promise<unknown> {
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) {
      throw new RpcError(
        'UNIMPLEMENTED',
        `no handler for pattern "${pattern}" on queue "${ctx.queue}"`,
        {
          details: { queue: ctx.queue, method: pattern },
        },
      );
    }
    const context = new RabbitRpcContext([ctx, pattern, wire]);
    return this.#processing(context, async () => {
      if (handler.isEventHandler === true) {
        await this.#runEventHandlers(handler, data, context);
        return null;
      }
      try {
        const result = asObservableOrValue(await handler(data, context));
        if (!('subscribe' in result)) return result.value;
        return streamed ? toAsyncIterable(result) : await lastValue(result, ctx.signal);
      } catch (error) {
        throw this.#mapError(error);
      }
    });
  }

  /**
   * Runs `work` inside Nest's processing hooks (`setOnProcessingStartHook`, used by tracing
   * and request-scoped context libraries), as Nest's own transports do.
   */
  #processing(context: RabbitRpcContext, work: () => Promise<unknown>): Promise<unknown> {
    const transportId = this.transportId ?? TRANSPORT_ID;
    // Typed as always set, but Nest's Server leaves it unset until someone sets a hook.
    const end = this.onProcessingEndHook as Server['onProcessingEndHook'] | undefined;
    return new Promise((resolve, reject) => {
      try {
        this.onProcessingStartHook(transportId, context, () => {
          const running = work();
          running.finally(() => end?.(transportId, context)).then(resolve, reject);
          return running;
        });
      } catch (error) {
        reject(RpcError.from(error, 'INTERNAL'));
      }
    });
  }

  /** Every `@EventPattern` handler of the pattern, in turn; a failure is logged, as Nest does. */
  async #runEventHandlers(
    first: MessageHandler,
    data: unknown,
    context: RabbitRpcContext,
  ): Promise<void> {
    for (
      let handler: MessageHandler | undefined = first;
      handler;
      handler = handler.next as MessageHandler | undefined
    ) {
      try {
        const result = asObservableOrValue(await handler(data, context));
        if ('subscribe' in result) await lastValue(result, context.signal);
      } catch (error) {
        this.#log.error(
          `event handler for "${context.getPattern()}" failed: ${toRpcError(error).message}`,
        );
      }
    }
  }

  #mapError(error: unknown): RpcError {
    const mapped = toRpcError(error);
    if (
      mapped.code === 'UNKNOWN' &&
      mapped.message === NEST_UNKNOWN_MESSAGE &&
      !this.#warnedAboutFilter
    ) {
      this.#warnedAboutFilter = true;
      this.#log.warn(
        'Nest replaced an exception with "Internal server error" before rabbit-rpc saw it: ' +
          'register RabbitRpcExceptionFilter on this microservice to keep codes and messages',
      );
    }
    return mapped;
  }

  /**
   * The migration bridge: a request without AMQP `type` whose body is Nest's RMQ envelope
   * is dispatched on its `pattern` (through the contract, if any) and answered in the
   * envelope, errors included, since a Nest client cannot read rabbit-rpc's error headers.
   */
  #envelopeBridge(): ServeInterceptor {
    return (next) => async (request, ctx) => {
      if (ctx.method !== undefined || !isNestEnvelope(request)) return next(request, ctx);
      const pattern = this.getPatternAsString(request.pattern);
      const normalized = this.getRouteFromPattern(pattern);
      // The rest of the chain sees the envelope's pattern as the method. A Proxy, because the
      // context's getters read private fields of the original object.
      const headers = { ...ctx.headers };
      envelopeHeaders.add(headers);
      const asCall = new Proxy(ctx, {
        get: (target, key) => {
          if (key === 'method') return normalized;
          if (key === 'headers') return headers;
          return Reflect.get(target, key) as unknown;
        },
      });
      const { id } = request;
      if (id === undefined) {
        // An event (ClientRMQ.emit): no reply is expected.
        await next(request.data, asCall).catch((error: unknown) => {
          this.#log.error(`event "${pattern}" failed: ${toRpcError(error).message}`);
        });
        return undefined;
      }
      try {
        const response = await next(request.data, asCall);
        return { id, response, isDisposed: true } satisfies NestReply;
      } catch (error) {
        const mapped = toRpcError(error);
        const err = {
          status: 'error',
          message: mapped.message,
          code: mapped.code,
          ...(mapped.details === undefined ? {} : { details: mapped.details }),
        };
        return { id, err, isDisposed: true } satisfies NestReply;
      }
    };
  }

  /** Stops taking requests, lets those in flight finish, then closes its own connection. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#unwatch?.();
    this.#unwatch = undefined;
    await server?.close();
    if (!this.#options.connection) await this.#connection?.close();
    this.#connection = undefined;
  }

  /** `on('state', listener)`: the connection's state changes (`connected`, `reconnecting`, ...). */
  on(event: keyof RabbitRpcEvents, callback: RabbitRpcEvents['state']): void {
    // JavaScript callers can pass any name.
    if ((event as string) !== 'state')
      throw new RpcError('INVALID_ARGUMENT', `RabbitRpcStrategy has no event "${event}"`);
    this.#stateListeners.push(callback);
  }

  /** The rabbit-rpc connection (after `listen()`). */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- Nest's signature
  unwrap<T>(): T {
    if (!this.#connection) {
      throw new RpcError('FAILED_PRECONDITION', 'RabbitRpcStrategy is not listening yet');
    }
    return this.#connection as T;
  }
}

/**
 * The headers objects of requests that came in Nest's envelope. The contract's server hands
 * handlers a context of its own, but passes `headers` through: so they mark the request.
 */
const envelopeHeaders = new WeakSet<object>();

function wireOf(ctx: HandlerContext): RabbitRpcWire {
  return envelopeHeaders.has(ctx.headers) ? 'nest-envelope' : 'rabbit-rpc';
}
