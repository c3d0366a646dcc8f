import { collectReplies, type BroadcastReply } from './client/broadcast.js';
import { Caller, type CallerStats } from './client/caller.js';
import type { MultiReply } from './client/multi-reply.js';
import { ClientStream, type RpcStream } from './client/stream.js';
import { ControlPlane } from './control/control-plane.js';
import { RpcError } from './errors.js';
import { openLink, type ConnectionState, type Link } from './transport/link.js';
import { checkOptionNames } from './option-names.js';
import {
  BROADCAST_OPTION_NAMES,
  CALL_OPTION_NAMES,
  checkQueueName,
  STREAM_OPTION_NAMES,
  DEFAULT_BROADCAST_TIMEOUT_MS,
  inheritFromParent,
  resolveMax,
  resolveTimeoutMs,
  resolveWindow,
  type BroadcastOptions,
  type CallOptions,
  type StreamOptions,
} from './options/call.js';
import {
  resolveConnectOptions,
  type ConnectOptions,
  type ResolvedConnectOptions,
} from './options/connect.js';
import { resolveServeOptions, type ServeOptions } from './options/serve.js';
import { RpcServer, type Handler, type ServerStats } from './server/server.js';
import { chain, type CallNext, type CallRequest, type ServeNext } from './interceptors.js';
import { isServiceDefinition } from './contract/define-service.js';
import {
  createServiceClient,
  type ServiceClientOptions,
  type ServiceRef,
  type ServiceRefOptions,
  type ServiceRefOptionsArgs,
  type ServiceTransport,
} from './contract/service-client.js';
import { describeService } from './contract/describe.js';
import type { ContractDescription } from './protocol/describe.js';
import { discover, type DiscoveryOptions, type ServiceDescription } from './client/discovery.js';
import { planServiceServer, type ServiceServeOptions } from './contract/service-server.js';
import type {
  AnyService,
  NoExtraMethods,
  ServiceClient,
  ServiceImplementation,
} from './contract/types.js';

export type { ConnectionState } from './transport/link.js';

/** How a stream or a broadcast takes its replies: carried past the interceptors to the caller. */
const MULTI: unique symbol = Symbol('rabbit-rpc.multi');

/** A call request with what its kind needs: a spread copy keeps it (symbols spread). */
interface InternalCallRequest extends CallRequest {
  readonly [MULTI]?: MultiReply;
}

/** A snapshot of a connection's counters. */
export interface ConnectionStats extends CallerStats {
  /** Times the connection came back after a loss. */
  reconnects: number;
  /** One entry per server still running on this connection. */
  servers: Array<ServerStats & { queue: string }>;
}

/**
 * Connects to RabbitMQ. The returned connection both calls (`call`) and serves (`serve`).
 *
 * @param options a URL (`amqp://user:pass@host:5672/vhost`, `amqps://...`) or
 *   {@link ConnectOptions}; without it, `AMQP_URL` from the environment, else
 *   `amqp://guest:guest@localhost:5672`.
 * @throws RpcError INVALID_ARGUMENT for bad options, UNAVAILABLE when no broker answers,
 *   UNAUTHENTICATED when the login is refused, PERMISSION_DENIED without vhost access,
 *   CANCELLED when `options.signal` aborts.
 */
export async function connect(options?: string | ConnectOptions): Promise<RpcConnection> {
  const resolved = resolveConnectOptions(options);
  const { signal } = resolved;
  if (signal?.aborted) {
    throw new RpcError('CANCELLED', 'connect() was cancelled', { cause: signal.reason });
  }
  const opening = openLink(resolved);
  const link = await (signal ? raceAbort(opening, signal) : opening);
  return new RpcConnection(link, resolved);
}

/**
 * One AMQP connection, shared by the calling side (a publishing and a reply channel) and
 * every server (one channel each). It reconnects by itself after a loss (see
 * {@link ConnectOptions.reconnect}). Close it with `close()` or `await using`.
 */
export class RpcConnection implements AsyncDisposable {
  readonly #link: Link;
  readonly #options: ResolvedConnectOptions;
  readonly #caller: Caller;
  readonly #control: ControlPlane;
  readonly #servers = new Set<RpcServer>();
  #closing: Promise<void> | undefined;
  /** The call interceptors composed around the caller; undefined when there are none. */
  readonly #intercepted: CallNext | undefined;

  /** @internal Use {@link connect}. */
  constructor(link: Link, options: ResolvedConnectOptions) {
    this.#link = link;
    this.#options = options;
    this.#control = new ControlPlane(link, options.userId);
    this.#caller = new Caller(link, options, this.#control);
    if (options.callInterceptors.length > 0) {
      this.#intercepted = chain(options.callInterceptors, (request: CallRequest) =>
        this.#send(request),
      );
    }
  }

  /** The broker URL in use, with the password hidden. */
  get url(): string {
    return this.#link.url;
  }

  /** `connected`, `blocked`, `reconnecting` or `closed`; see {@link onStateChange}. */
  get state(): ConnectionState {
    return this.#link.state;
  }

  /** Calls `listener` on every state change, for health checks; returns an unsubscribe function. */
  onStateChange(listener: (state: ConnectionState) => void): () => void {
    return this.#link.onStateChange(listener);
  }

  /**
   * Resolves once the connection has ended for good: with `undefined` after `close()`, or
   * with the RpcError that ended it (a loss with `reconnect: false`, or a reconnect the
   * broker refused). Never rejects.
   */
  get closed(): Promise<RpcError | undefined> {
    return this.#link.ended;
  }

  /** Counters for health checks and tests: pending calls, unmatched replies, servers. */
  stats(): ConnectionStats {
    return {
      ...this.#caller.stats,
      reconnects: this.#link.reconnects,
      servers: [...this.#servers].map((server) => ({ queue: server.queue, ...server.stats })),
    };
  }

  /**
   * Calls the server consuming `queue` and resolves with its reply.
   *
   * @param request JSON-serialisable value, or bytes (`Uint8Array`) sent as they are
   * @throws RpcError DEADLINE_EXCEEDED after `timeoutMs`, CANCELLED when `signal` aborts,
   *   UNAVAILABLE when no queue `queue` exists or the connection drops, RESOURCE_EXHAUSTED
   *   for a request over `maxPayloadBytes`, or the code the handler threw.
   */
  call<TReply = unknown>(queue: string, request: unknown, options?: CallOptions): Promise<TReply> {
    return this.#invoke(queue, undefined, request, options) as Promise<TReply>;
  }

  /** @internal The typed client calls through here: `method` travels in the AMQP `type` property. */
  callMethod(
    queue: string,
    method: string,
    request: unknown,
    options?: CallOptions,
  ): Promise<unknown> {
    return this.#invoke(queue, method, request, options);
  }

  /**
   * Calls a handler that streams its reply (returns an AsyncIterable or is an async
   * generator) and returns the items as an AsyncIterable, in order. The request is sent on
   * the first `next()`; the server sends at most `window` items ahead of those read;
   * leaving the loop early cancels the stream on the server. A server that replies once
   * gives a stream of that one item. Errors (the handler's, DEADLINE_EXCEEDED when the whole
   * stream takes longer than `timeoutMs`, CANCELLED) are thrown by the loop, after the items
   * that came before them. The call interceptors see the stream as a call of kind `stream`
   * when its request is sent; their `next()` settles when the stream ends.
   */
  stream<TItem = unknown>(
    queue: string,
    request: unknown,
    options: StreamOptions = {},
  ): RpcStream<TItem> {
    return this.#stream<TItem>(queue, undefined, request, options);
  }

  /** @internal The typed client streams through here. */
  streamMethod(
    queue: string,
    method: string,
    request: unknown,
    options?: StreamOptions,
  ): RpcStream<unknown> {
    return this.#stream(queue, method, request, options ?? {});
  }

  #stream<TItem>(
    queue: string,
    method: string | undefined,
    request: unknown,
    options: StreamOptions,
  ): ClientStream<TItem> {
    const { window: requestedWindow, ...callOptions } = options;
    let window: number;
    try {
      checkOptionNames(
        options,
        STREAM_OPTION_NAMES,
        method === undefined ? 'stream()' : `${method}()`,
      );
      window = resolveWindow(requestedWindow);
    } catch (error) {
      // Thrown by the first next(), like every other failure of the stream.
      const invalid = RpcError.from(error, 'INVALID_ARGUMENT');
      return new ClientStream<TItem>(() => Promise.reject(invalid), this.#control, queue, 1);
    }
    return new ClientStream<TItem>(
      (multi, stopSignal) => {
        let inherited: CallOptions;
        try {
          inherited = inheritFromParent(callOptions, this.#options.defaultTimeoutMs);
        } catch (error) {
          return Promise.reject(RpcError.from(error, 'INVALID_ARGUMENT'));
        }
        const signal = inherited.signal
          ? AbortSignal.any([inherited.signal, stopSignal])
          : stopSignal;
        let timeoutMs: number;
        try {
          timeoutMs = resolveTimeoutMs(inherited.timeoutMs, this.#options.defaultTimeoutMs);
        } catch (error) {
          return Promise.reject(RpcError.from(error, 'INVALID_ARGUMENT'));
        }
        return this.#dispatch({
          kind: 'stream',
          queue,
          method,
          payload: request,
          headers: { ...inherited.headers },
          timeoutMs,
          signal,
          idempotent: false,
          [MULTI]: multi,
        });
      },
      this.#control,
      queue,
      window,
    );
  }

  /**
   * Scatter-gather: sends `request` to every server instance serving `queue` (each rabbit-rpc
   * connection that serves it, through the control exchange) and collects their replies
   * until `max` have come or `timeoutMs` has passed. Resolves with the replies that came,
   * each with the instance that sent it and its outcome; with none when nothing serves
   * `queue`. For status and health checks: a broadcast is not queued for later, and an
   * instance that is down is simply missing from the result. The call interceptors see it as
   * a call of kind `broadcast`; their `next()` resolves with the replies.
   *
   * @throws RpcError CANCELLED when `signal` aborts, INVALID_ARGUMENT for bad options.
   */
  async broadcast<TReply = unknown>(
    queue: string,
    request: unknown,
    options: BroadcastOptions = {},
  ): Promise<Array<BroadcastReply<TReply>>> {
    checkOptionNames(options, BROADCAST_OPTION_NAMES, 'broadcast()');
    const timeoutMs = resolveTimeoutMs(options.timeoutMs, DEFAULT_BROADCAST_TIMEOUT_MS);
    const max = resolveMax(options.max);
    checkQueueName(queue);
    const { multi } = collectReplies(max);
    return (await this.#dispatch({
      kind: 'broadcast',
      queue,
      method: undefined,
      payload: request,
      headers: { ...options.headers },
      timeoutMs,
      signal: options.signal,
      idempotent: false,
      [MULTI]: multi,
    })) as Array<BroadcastReply<TReply>>;
  }

  /**
   * Finds every rabbit-rpc server on the broker (the vhost) in one request through the
   * control exchange, and resolves with them grouped by queue: the service, its methods with
   * their JSON Schemas, and each instance (version, start time, calls in flight, counters).
   * Servers that are not rabbit-rpc (the seed's) do not answer and are not listed. Collects
   * answers for `timeoutMs` (default 1000). Not seen by the call interceptors: it is a
   * question to the control plane, not a call.
   *
   * @throws RpcError CANCELLED when `signal` aborts, INVALID_ARGUMENT for bad options.
   */
  services(options?: DiscoveryOptions): Promise<ServiceDescription[]> {
    return discover({ caller: this.#caller, control: this.#control }, undefined, options);
  }

  /**
   * Describes the service served on `queue`: its methods and the instances that answered
   * within `timeoutMs` (default 1000).
   *
   * @throws RpcError NOT_FOUND when no rabbit-rpc server of `queue` answered,
   *   INVALID_ARGUMENT for bad options, CANCELLED when `signal` aborts.
   */
  async describe(queue: string, options?: DiscoveryOptions): Promise<ServiceDescription> {
    const [service] = await discover(
      { caller: this.#caller, control: this.#control },
      queue,
      options,
    );
    if (service === undefined) {
      throw new RpcError('NOT_FOUND', `no rabbit-rpc server of "${queue}" answered`);
    }
    return service;
  }

  /** Runs a stream or a broadcast through the interceptors (if any) to {@link #send}. */
  #dispatch(request: InternalCallRequest): Promise<unknown> {
    const intercepted = this.#intercepted;
    if (!intercepted) return this.#send(request);
    try {
      // Whatever an interceptor throws reaches the caller as an RpcError.
      return intercepted(request).catch((error: unknown) => {
        throw RpcError.from(error, 'UNKNOWN');
      });
    } catch (error) {
      return Promise.reject(RpcError.from(error, 'UNKNOWN'));
    }
  }

  /** The end of the interceptor chain: publishes the call, whatever its kind. */
  #send(request: CallRequest): Promise<unknown> {
    const multi = (request as InternalCallRequest)[MULTI];
    if (request.kind !== 'unary' && multi === undefined) {
      return Promise.reject(
        new RpcError(
          'INTERNAL',
          `a call interceptor passed on a ${request.kind} request without what came with it: pass the request it got (or a spread copy)`,
        ),
      );
    }
    const callOptions: CallOptions = {
      timeoutMs: request.timeoutMs,
      headers: request.headers,
      idempotent: request.idempotent,
    };
    if (request.signal) callOptions.signal = request.signal;
    if (request.kind === 'broadcast' && multi) return this.#broadcast(request, callOptions, multi);
    return this.#caller.call(request.queue, request.payload, callOptions, request.method, multi);
  }

  async #broadcast(
    request: CallRequest,
    callOptions: CallOptions,
    multi: MultiReply,
  ): Promise<unknown> {
    // No control exchange: no rabbit-rpc server has ever run on this vhost.
    const exists = await this.#control.exchangeExists().catch((error: unknown) => {
      throw RpcError.from(error, 'UNAVAILABLE');
    });
    if (!exists) return [];
    return this.#caller.call(request.queue, request.payload, callOptions, undefined, multi);
  }

  /** Runs a call through the interceptors (if any) to the caller. */
  #invoke(
    queue: string,
    method: string | undefined,
    payload: unknown,
    options: CallOptions | undefined,
  ): Promise<unknown> {
    if (options !== undefined) {
      try {
        checkOptionNames(
          options,
          CALL_OPTION_NAMES,
          method === undefined ? 'call()' : `${method}()`,
        );
      } catch (error) {
        return Promise.reject(RpcError.from(error, 'INVALID_ARGUMENT'));
      }
    }
    if (options?.parent) {
      try {
        options = inheritFromParent(options, this.#options.defaultTimeoutMs);
      } catch (error) {
        return Promise.reject(RpcError.from(error, 'INVALID_ARGUMENT'));
      }
    }
    const intercepted = this.#intercepted;
    if (!intercepted) return this.#caller.call(queue, payload, options, method);
    try {
      const timeoutMs = resolveTimeoutMs(options?.timeoutMs, this.#options.defaultTimeoutMs);
      const request: CallRequest = {
        kind: 'unary',
        queue,
        method,
        payload,
        headers: { ...options?.headers },
        timeoutMs,
        signal: options?.signal,
        idempotent: options?.idempotent === true,
      };
      // Whatever an interceptor throws reaches the caller as an RpcError.
      return intercepted(request).catch((error: unknown) => {
        throw RpcError.from(error, 'UNKNOWN');
      });
    } catch (error) {
      return Promise.reject(RpcError.from(error, 'UNKNOWN'));
    }
  }

  /**
   * Serves a service contract (see docs/contracts.md) on its queue with one handler per
   * method; the method name comes in the AMQP `type` property. Input is validated before
   * the handler runs (INVALID_ARGUMENT); an unknown method gets UNIMPLEMENTED.
   */
  // First: TypeScript types an inline implementation against the first overload it tries.
  // `const TImpl` keeps literal return types ('ok', { status: 'ok' }) from widening to string.
  serve<S extends AnyService, const TImpl extends ServiceImplementation<NoInfer<S>>>(
    service: S,
    implementation: TImpl & NoExtraMethods<TImpl, NoInfer<S>>,
    options?: ServiceServeOptions,
  ): Promise<RpcServer>;
  /**
   * Serves requests on `queue` (declared unless `declare: false`) with `handler`, running
   * up to `prefetch` requests at once. Resolves once the server consumes.
   */
  serve<TRequest = unknown, TReply = unknown>(
    queue: string,
    handler: Handler<TRequest, TReply>,
    options?: ServeOptions,
  ): Promise<RpcServer>;
  async serve<TRequest = unknown, TReply = unknown>(
    queue: string | AnyService,
    handler: Handler<TRequest, TReply> | ServiceImplementation<AnyService>,
    options?: ServeOptions,
  ): Promise<RpcServer> {
    if (isServiceDefinition(queue)) {
      const plan = planServiceServer(queue, handler as ServiceImplementation<AnyService>, options);
      // What describe requests are answered with: the schemas are converted once, here.
      const contract = await describeService(queue, plan.queue);
      return this.#serve(plan.queue, plan.handler, plan.options, contract);
    }
    return this.#serve(queue, handler as Handler<TRequest, TReply>, options, undefined);
  }

  async #serve<TRequest, TReply>(
    queue: string,
    handler: Handler<TRequest, TReply>,
    options: ServeOptions | undefined,
    contract: ContractDescription | undefined,
  ): Promise<RpcServer> {
    checkQueueName(queue);
    if (typeof handler !== 'function')
      throw new RpcError('INVALID_ARGUMENT', 'serve() needs a handler function');
    const resolved = resolveServeOptions(options);
    const interceptors = [...this.#options.serveInterceptors, ...(options?.interceptors ?? [])];
    const run =
      interceptors.length === 0
        ? (handler as Handler)
        : chain<ServeNext>(
            interceptors,
            // async: a handler's synchronous throw becomes a rejection the chain can see.
            async (request, ctx) => await (handler as Handler)(request, ctx),
          );
    if (this.#closing) throw new RpcError('FAILED_PRECONDITION', 'the connection is closed');
    const ended = this.#link.endedWith;
    if (ended) throw ended;
    const server = new RpcServer(
      this.#link,
      queue,
      run,
      resolved,
      this.#options.maxPayloadBytes,
      (closed) => this.#servers.delete(closed),
      this.#control,
      contract,
    );
    this.#servers.add(server);
    try {
      await server.start();
    } catch (error) {
      this.#servers.delete(server);
      throw error;
    }
    return server;
  }

  /**
   * The typed client of a service contract: one method per contract method, a unary one
   * `(input, { timeoutMs, signal, headers }?) => Promise<output>`, a streaming one
   * `(input, { window, timeoutMs, signal, headers }?) => AsyncIterable of items`. Pass the
   * contract value, or, with a type-only import, its name: `rpc.client<typeof math>('math')`
   * (then name the streaming methods, if any: `{ streams: { tail: true } }`).
   */
  client<S extends AnyService>(service: S, options?: ServiceClientOptions): ServiceClient<S>;
  // Separate on purpose: `= never` makes `client('name')` without a type argument fail to compile.
  client<S extends AnyService = never>(
    ref: ServiceRef<S>,
    ...options: ServiceRefOptionsArgs<S>
  ): ServiceClient<S>;
  client<S extends AnyService>(
    service: S | ServiceRef<S>,
    options?: ServiceClientOptions | ServiceRefOptions<S>,
  ): ServiceClient<S> {
    const transport: ServiceTransport = {
      call: (queue, method, request, callOptions) =>
        this.callMethod(queue, method, request, callOptions),
      stream: (queue, method, request, streamOptions) =>
        this.streamMethod(queue, method, request, streamOptions),
    };
    return createServiceClient<S>(transport, service, options);
  }

  /**
   * Closes every server gracefully (see {@link RpcServer.close}), rejects calls still
   * pending with CANCELLED and tells their servers to stop them, then closes the AMQP
   * connection. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await Promise.all([...this.#servers].map((server) => server.close()));
    this.#caller.close(
      new RpcError('CANCELLED', 'the connection was closed by the application'),
      new RpcError('FAILED_PRECONDITION', 'the connection is closed'),
    );
    await this.#caller.deleteReplyQueue();
    await this.#control.close();
    await this.#link.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function raceAbort(opening: Promise<Link>, signal: AbortSignal): Promise<Link> {
  return new Promise<Link>((resolve, reject) => {
    const onAbort = () => {
      reject(new RpcError('CANCELLED', 'connect() was cancelled', { cause: signal.reason }));
      // Whatever the attempt yields now is unwanted.
      opening
        .then(
          (link) => link.close(),
          () => undefined,
        )
        .catch(() => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    opening.then(
      (link) => {
        signal.removeEventListener('abort', onAbort);
        resolve(link);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(RpcError.from(error, 'UNAVAILABLE'));
      },
    );
  });
}
