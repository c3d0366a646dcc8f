import type { ControlPlane } from '../control/control-plane.js';
import { RpcError } from '../errors.js';
import { chain, type CallNext, type CallRequest } from '../interceptors.js';
import { checkOptionNames } from '../option-names.js';
import {
  BROADCAST_OPTION_NAMES,
  CALL_OPTION_NAMES,
  checkMethodName,
  checkQueueName,
  DEFAULT_BROADCAST_TIMEOUT_MS,
  inheritFromParent,
  resolveMax,
  resolveTimeoutMs,
  resolveWindow,
  STREAM_OPTION_NAMES,
  type BroadcastOptions,
  type CallOptions,
  type StreamOptions,
} from '../options/call.js';
import type { ResolvedConnectOptions } from '../options/connect.js';
import { collectReplies, type BroadcastReply } from './broadcast.js';
import type { Caller } from './caller.js';
import { discover, type DiscoveryOptions, type ServiceDescription } from './discovery.js';
import type { MultiReply } from './multi-reply.js';
import { ClientStream } from './stream.js';

/** How a stream or a broadcast takes its replies: carried past the interceptors to the caller. */
const MULTI: unique symbol = Symbol('rabbit-rpc.multi');

/** A call request with what its kind needs: a spread copy keeps it (symbols spread). */
interface InternalCallRequest extends CallRequest {
  readonly [MULTI]?: MultiReply;
}

/**
 * The one path of every kind of call (a call, a contract method, a stream, a broadcast)
 * through the call interceptors to the {@link Caller}; discovery goes to the caller
 * directly (a question to the control plane, not a call).
 */
export class Invoker {
  readonly #caller: Caller;
  readonly #control: ControlPlane;
  readonly #defaultTimeoutMs: number;
  /** The call interceptors composed around the caller; undefined when there are none. */
  readonly #intercepted: CallNext | undefined;

  constructor(caller: Caller, control: ControlPlane, options: ResolvedConnectOptions) {
    this.#caller = caller;
    this.#control = control;
    this.#defaultTimeoutMs = options.defaultTimeoutMs;
    if (options.callInterceptors.length > 0) {
      this.#intercepted = chain(options.callInterceptors, (request: CallRequest) =>
        this.#send(request),
      );
    }
  }

  /** Runs a call through the interceptors (if any) to the caller. */
  call(
    queue: string,
    method: string | undefined,
    payload: unknown,
    options: CallOptions | undefined,
  ): Promise<unknown> {
    if (options !== undefined) {
      // The method a typed client names wins over the `method` option (one read per call).
      const named = options.method;
      try {
        checkOptionNames(
          options,
          CALL_OPTION_NAMES,
          method === undefined ? 'call()' : `${method}()`,
        );
        if (named !== undefined && method === undefined) {
          checkMethodName(named);
          method = named;
        }
      } catch (error) {
        return Promise.reject(RpcError.from(error, 'INVALID_ARGUMENT'));
      }
    }
    if (options?.parent) {
      try {
        options = inheritFromParent(options, this.#defaultTimeoutMs);
      } catch (error) {
        return Promise.reject(RpcError.from(error, 'INVALID_ARGUMENT'));
      }
    }
    const intercepted = this.#intercepted;
    if (!intercepted) return this.#caller.call(queue, payload, options, method);
    try {
      const timeoutMs = resolveTimeoutMs(options?.timeoutMs, this.#defaultTimeoutMs);
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

  /** A stream whose request goes out, through the interceptors, on its first `next()`. */
  stream<TItem>(
    queue: string,
    method: string | undefined,
    request: unknown,
    options: StreamOptions,
  ): ClientStream<TItem> {
    const { window: requestedWindow, method: named, ...callOptions } = options;
    let window: number;
    try {
      checkOptionNames(
        options,
        STREAM_OPTION_NAMES,
        method === undefined ? 'stream()' : `${method}()`,
      );
      // The method a typed client names wins over the `method` option.
      if (named !== undefined && method === undefined) {
        checkMethodName(named);
        method = named;
      }
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
          inherited = inheritFromParent(callOptions, this.#defaultTimeoutMs);
        } catch (error) {
          return Promise.reject(RpcError.from(error, 'INVALID_ARGUMENT'));
        }
        const signal = inherited.signal
          ? AbortSignal.any([inherited.signal, stopSignal])
          : stopSignal;
        let timeoutMs: number;
        try {
          timeoutMs = resolveTimeoutMs(inherited.timeoutMs, this.#defaultTimeoutMs);
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

  /** Scatter-gather through the control exchange; see `RpcConnection.broadcast`. */
  async broadcast<TReply>(
    queue: string,
    request: unknown,
    options: BroadcastOptions,
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

  /** Discovery (`services()`, `describe()`): not seen by the call interceptors. */
  discover(
    queue: string | undefined,
    options: DiscoveryOptions | undefined,
  ): Promise<ServiceDescription[]> {
    return discover({ caller: this.#caller, control: this.#control }, queue, options);
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
}
