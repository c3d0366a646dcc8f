import type { BroadcastReply } from './client/broadcast.js';
import { Caller, type CallerStats } from './client/caller.js';
import type { DiscoveryOptions, ServiceDescription } from './client/discovery.js';
import { Invoker } from './client/invoke.js';
import type { RpcStream } from './client/stream.js';
import { ControlPlane } from './control/control-plane.js';
import { RpcError } from './errors.js';
import { openLink, type ConnectionState, type Link } from './transport/link.js';
import {
  checkQueueName,
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
import { createServer, type Handler, type RpcServer, type ServerStats } from './server/server.js';
import { chain, type ServeNext } from './interceptors.js';
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
import { planServiceServer, type ServiceServeOptions } from './contract/service-server.js';
import type {
  AnyService,
  NoExtraMethods,
  ServiceClient,
  ServiceImplementation,
} from './contract/types.js';

export type { ConnectionState } from './transport/link.js';

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
  return (construct as NonNullable<typeof construct>)(link, resolved);
}

/** Set by RpcConnection's static block: the only way to make one (its constructor is private). */
let construct: ((link: Link, options: ResolvedConnectOptions) => RpcConnection) | undefined;

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
  /** Every kind of call, through the call interceptors to the caller. */
  readonly #invoke: Invoker;

  static {
    construct = (link, options) => new RpcConnection(link, options);
  }

  /** Use {@link connect}. */
  private constructor(link: Link, options: ResolvedConnectOptions) {
    this.#link = link;
    this.#options = options;
    this.#control = new ControlPlane(link, options.userId);
    this.#caller = new Caller(link, options, this.#control);
    this.#invoke = new Invoker(this.#caller, this.#control, options);
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
    return this.#invoke.call(queue, undefined, request, options) as Promise<TReply>;
  }

  /** @internal The typed client calls through here: `method` travels in the AMQP `type` property. */
  callMethod(
    queue: string,
    method: string,
    request: unknown,
    options?: CallOptions,
  ): Promise<unknown> {
    return this.#invoke.call(queue, method, request, options);
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
    return this.#invoke.stream<TItem>(queue, undefined, request, options);
  }

  /** @internal The typed client streams through here. */
  streamMethod(
    queue: string,
    method: string,
    request: unknown,
    options?: StreamOptions,
  ): RpcStream<unknown> {
    return this.#invoke.stream(queue, method, request, options ?? {});
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
  broadcast<TReply = unknown>(
    queue: string,
    request: unknown,
    options: BroadcastOptions = {},
  ): Promise<Array<BroadcastReply<TReply>>> {
    return this.#invoke.broadcast<TReply>(queue, request, options);
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
    return this.#invoke.discover(undefined, options);
  }

  /**
   * Describes the service served on `queue`: its methods and the instances that answered
   * within `timeoutMs` (default 1000).
   *
   * @throws RpcError NOT_FOUND when no rabbit-rpc server of `queue` answered,
   *   INVALID_ARGUMENT for bad options, CANCELLED when `signal` aborts.
   */
  async describe(queue: string, options?: DiscoveryOptions): Promise<ServiceDescription> {
    const [service] = await this.#invoke.discover(queue, options);
    if (service === undefined) {
      throw new RpcError('NOT_FOUND', `no rabbit-rpc server of "${queue}" answered`);
    }
    return service;
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
    const { server, start } = createServer({
      link: this.#link,
      queue,
      handler: run,
      options: resolved,
      maxPayloadBytes: this.#options.maxPayloadBytes,
      onClosed: (closed) => this.#servers.delete(closed),
      control: this.#control,
      contract,
    });
    this.#servers.add(server);
    try {
      await start();
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
