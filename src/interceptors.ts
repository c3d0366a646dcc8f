import type { HandlerContext } from './handler.js';

/**
 * The kind of a call: `unary` (`call()` and a contract's unary methods), `stream` (`stream()`
 * and a contract's streaming methods), `broadcast` (`broadcast()`).
 */
export type CallKind = 'unary' | 'stream' | 'broadcast';

/** A call as client interceptors see it, before it is published. */
export interface CallRequest {
  /** What kind of call it is; it says what `next()` resolves with (see {@link CallNext}). */
  readonly kind: CallKind;
  /** The queue the request goes to. */
  readonly queue: string;
  /** The method name of a service call; undefined for plain calls. */
  readonly method: string | undefined;
  /** The request payload, not yet encoded. */
  readonly payload: unknown;
  /** Application headers to send; interceptors may add to them (auth, trace context). */
  readonly headers: Record<string, string | number | boolean>;
  /** The call's timeout. */
  readonly timeoutMs: number;
  /** The caller's signal, if any. */
  readonly signal: AbortSignal | undefined;
  /** Whether the call may be retried on UNAVAILABLE (`CallOptions.idempotent`). */
  readonly idempotent: boolean;
}

/**
 * Sends a call; rejects with an RpcError, or resolves: for a `unary` call with the decoded
 * reply, for a `stream` with `undefined` once the stream has ended (the items go to the
 * reader, not through the chain), for a `broadcast` with its replies.
 */
export type CallNext = (request: CallRequest) => Promise<unknown>;

/**
 * Wraps every call of a connection, of every kind (calls, streams, broadcasts): auth headers,
 * logging, metrics, tracing. The first interceptor in the list is the outermost: it sees the
 * call first and the outcome last. Pass on the request it got, changed in place or as a
 * spread copy (`next({ ...request, ... })`).
 *
 * @example
 * ```ts
 * const addToken: CallInterceptor = (next) => (request) => {
 *   request.headers['authorization'] = `Bearer ${token}`;
 *   return next(request);
 * };
 * const rpc = await connect({ url, callInterceptors: [addToken] });
 * ```
 */
export type CallInterceptor = (next: CallNext) => CallNext;

/** Runs a request through the rest of the chain and the handler. */
export type ServeNext = (request: unknown, ctx: HandlerContext) => Promise<unknown>;

/**
 * Wraps every request a server handles, around the handler: what it returns is the reply,
 * what it throws becomes the error reply. The first in the list is the outermost.
 * Requests that fail to decode, or whose deadline has passed, never reach it.
 */
export type ServeInterceptor = (next: ServeNext) => ServeNext;

/** Composes interceptors around `inner`, the first one outermost. */
export function chain<TNext>(
  interceptors: ReadonlyArray<(next: TNext) => TNext>,
  inner: TNext,
): TNext {
  let next = inner;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    const interceptor = interceptors[i];
    if (interceptor) next = interceptor(next);
  }
  return next;
}
