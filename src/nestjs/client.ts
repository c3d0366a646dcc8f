import {
  ClientProxy,
  type MsPattern,
  type ReadPacket,
  type WritePacket,
} from '@nestjs/microservices';
import { Observable } from 'rxjs';
import {
  connect,
  RpcError,
  type AnyService,
  type CallOptions,
  type ConnectOptions,
  type RpcConnection,
} from '../index.js';

/** Options of {@link RabbitRpcClient}. */
export interface RabbitRpcClientOptions {
  /** The queue of the strategy (or typed service) to call. */
  queue: string;
  /** A connection to call through (from `RabbitRpcModule`); the client never closes it. */
  connection?: RpcConnection;
  /**
   * The broker, when no `connection` is given: the client connects on first use (or
   * `connect()`) and closes its connection on `close()`.
   */
  url?: string | readonly string[] | ConnectOptions | undefined;
  /** Deadline of each call, in milliseconds. @default the connection's `defaultTimeoutMs` (30 s) */
  timeoutMs?: number;
}

/** Per-call options of `send` and `emit`: rabbit-rpc's `CallOptions`. */
export type RabbitRpcSendOptions = CallOptions;

/** A contract type for calling any method name, since a Nest pattern is only known at run time. */
type AnyMethods = AnyService;
type Untyped = Record<string, (input: unknown, options?: CallOptions) => Promise<unknown>>;

/**
 * A Nest `ClientProxy` over rabbit-rpc: `send(pattern, data)` calls the handler of
 * `pattern` (carried in the AMQP `type`) on `queue` and emits its reply, then completes.
 *
 * - Every call has a deadline (`timeoutMs`): no reply in time errors with
 *   `RpcError` `DEADLINE_EXCEEDED`.
 * - Unsubscribing before the reply cancels the call: the server's `ctx.signal` aborts.
 * - Errors are `RpcError`s with the server's code (NOT_FOUND, INVALID_ARGUMENT, ...).
 * - `emit(pattern, data)` runs the `@EventPattern` handlers and completes once they ran.
 *
 * The request is sent on subscription, as with Nest's own clients (Observables are lazy).
 */
export class RabbitRpcClient extends ClientProxy {
  readonly #options: RabbitRpcClientOptions;
  #connecting: Promise<RpcConnection> | undefined;
  #owned: RpcConnection | undefined;

  constructor(options: RabbitRpcClientOptions) {
    super();
    this.#options = options;
  }

  /** Connects if needed; resolves with the connection in use. */
  connect(): Promise<RpcConnection> {
    if (this.#options.connection) return Promise.resolve(this.#options.connection);
    this.#connecting ??= (async () => {
      const { url } = this.#options;
      const rpc = await connect(
        typeof url === 'string' || Array.isArray(url)
          ? { url }
          : (url as ConnectOptions | undefined),
      );
      this.#owned = rpc;
      return rpc;
    })();
    // A failed attempt is not cached: the next call tries again.
    this.#connecting.catch(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  /** Closes the client's own connection (never one it was given). */
  async close(): Promise<void> {
    const owned = this.#owned;
    this.#owned = undefined;
    this.#connecting = undefined;
    await owned?.close();
  }

  /** The rabbit-rpc connection, once connected. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- Nest's signature
  unwrap<T>(): T {
    const rpc = this.#options.connection ?? this.#owned;
    if (!rpc) throw new RpcError('FAILED_PRECONDITION', 'RabbitRpcClient is not connected yet');
    return rpc as T;
  }

  /**
   * Calls the handler of `pattern`; emits its reply and completes. `options` are
   * rabbit-rpc's call options: `timeoutMs`, `headers`, `signal`, and `parent` (a
   * `RabbitRpcContext`, to hand down a deadline and cancellation).
   */
  override send<TResult = unknown>(
    pattern: unknown,
    data: unknown,
    options?: RabbitRpcSendOptions,
  ): Observable<TResult> {
    return this.#call(pattern, data, options) as Observable<TResult>;
  }

  /** Sends an event to the `@EventPattern` handlers of `pattern`; completes once they ran. */
  override emit<TResult = unknown>(
    pattern: unknown,
    data: unknown,
    options?: RabbitRpcSendOptions,
  ): Observable<TResult> {
    return this.#call(pattern, data, options) as Observable<TResult>;
  }

  #call(
    pattern: unknown,
    data: unknown,
    options: RabbitRpcSendOptions | undefined,
  ): Observable<unknown> {
    return new Observable<unknown>((subscriber) => {
      const abort = new AbortController();
      let settled = false;
      const method = this.normalizePattern(pattern as MsPattern);
      const signal = options?.signal
        ? AbortSignal.any([options.signal, abort.signal])
        : abort.signal;
      const callOptions: CallOptions = { ...options, signal };
      if (callOptions.timeoutMs === undefined && this.#options.timeoutMs !== undefined) {
        callOptions.timeoutMs = this.#options.timeoutMs;
      }
      this.connect()
        .then((rpc) => {
          // A client made from a name has every method: the pattern is the method name.
          const methods = rpc.client<AnyMethods>({
            name: 'nest',
            queue: this.#options.queue,
          }) as unknown as Untyped;
          const call = methods[method];
          if (!call) throw new RpcError('INVALID_ARGUMENT', `pattern "${method}" cannot be called`);
          return call(data, callOptions);
        })
        .then(
          (reply) => {
            settled = true;
            subscriber.next(reply);
            subscriber.complete();
          },
          (error: unknown) => {
            settled = true;
            subscriber.error(RpcError.from(error, 'UNAVAILABLE'));
          },
        );
      // Unsubscribing before the reply cancels the call, down to the server's ctx.signal.
      return () => {
        if (!settled) abort.abort(new RpcError('CANCELLED', 'the subscriber unsubscribed'));
      };
    });
  }

  /** Nest's callback-based path, for code that calls it directly: the same call as `send`. */
  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    const subscription = this.#call(packet.pattern, packet.data, undefined).subscribe({
      next: (response) => callback({ response, isDisposed: true }),
      error: (err: unknown) => callback({ err, isDisposed: true }),
    });
    return () => subscription.unsubscribe();
  }

  protected dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#call(packet.pattern, packet.data, undefined).subscribe({
        next: (value) => resolve(value as T),
        error: reject,
      });
    });
  }
}
