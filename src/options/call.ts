/** Options of one call, stream or broadcast, and how they are resolved. */
import { RpcError } from '../errors.js';
import { optionNames } from '../option-names.js';
import { MAX_TIMEOUT_MS, integer, invalid } from './validate.js';

/** Per-call options of {@link RpcConnection.call}. */
export interface CallOptions {
  /** Deadline of this call, in milliseconds from now. @default the connection's `defaultTimeoutMs` */
  timeoutMs?: number;
  /** Aborting it rejects the call with CANCELLED. */
  signal?: AbortSignal;
  /** Application headers sent with the request; the handler reads them in `ctx.headers`. */
  headers?: Readonly<Record<string, string | number | boolean>>;
  /**
   * The handler context of the request this call is made for (`ctx` in a handler): the call
   * inherits its remaining deadline (never later than `timeoutMs`) and is cancelled when it
   * is, so deadlines and cancellation travel down a chain of services.
   */
  parent?: ParentContext;
  /**
   * The request is safe to run more than once. When it fails with UNAVAILABLE (no queue
   * yet, a nack, the connection or channel lost while it was pending) it is published
   * again, after 50 ms doubling to 1 s with jitter, until its deadline: with the same
   * correlation id, sent as `message_id` too, so that servers answer a retry they have
   * already run from their deduplication cache (`ServeOptions.dedupe`). A handler's own
   * error reply is never retried, nor is a stream. docs/reliability.md lists the limits.
   * @default false
   */
  idempotent?: boolean;
  /**
   * The method name, sent in the AMQP `type` property, for servers that dispatch on it
   * (typed contracts, NestJS patterns, other languages' servers); the handler reads it in
   * `ctx.method` and the call interceptors in `CallRequest.method`. A typed client names
   * its methods itself. @default none: the server's one handler answers
   */
  method?: string;
}

/** What a nested call inherits from its parent request: `HandlerContext` fits. */
export interface ParentContext {
  /** The parent's deadline, Unix epoch milliseconds; undefined when it has none. */
  readonly deadline: number | undefined;
  /** Aborts when the parent is cancelled or its deadline passes. */
  readonly signal: AbortSignal;
}

/** Options of {@link RpcConnection.stream}. */
export interface StreamOptions extends CallOptions {
  /**
   * How many items the server may send ahead of the ones read: its flow-control window.
   * The whole stream must end within `timeoutMs`. @default 32
   */
  window?: number;
}

/** Options of {@link RpcConnection.broadcast}. */
export interface BroadcastOptions {
  /** How long to collect replies, in milliseconds. @default 2000 */
  timeoutMs?: number;
  /** Stop once this many replies have come. @default no limit: every reply until `timeoutMs` */
  max?: number;
  /** Aborting it rejects the broadcast with CANCELLED. */
  signal?: AbortSignal;
  /** Application headers sent with the request. */
  headers?: Readonly<Record<string, string | number | boolean>>;
}

/** Default of {@link BroadcastOptions.timeoutMs}: broadcasts are for quick status checks. */
export const DEFAULT_BROADCAST_TIMEOUT_MS = 2_000;

/** Default of {@link StreamOptions.window}. */
export const DEFAULT_STREAM_WINDOW = 32;

/** The stream window: a whole number of items, 1 to 10,000. */
export function resolveWindow(window: number | undefined): number {
  return integer('window', window, DEFAULT_STREAM_WINDOW, 1, 10_000);
}

/** The most replies a broadcast collects. */
export function resolveMax(max: number | undefined): number {
  return max === undefined ? Infinity : integer('max', max, 1, 1, 1_000_000);
}

/**
 * A call's options with its parent's deadline and cancellation folded in: the earlier
 * deadline wins, and either signal cancels. A parent whose deadline has passed fails the
 * call before it is sent.
 */
export function inheritFromParent(options: CallOptions, defaultTimeoutMs: number): CallOptions {
  const { parent } = options;
  if (!parent) return options;
  const inherited: CallOptions = { ...options };
  delete inherited.parent;
  if (parent.deadline !== undefined) {
    const remainingMs = Math.floor(parent.deadline - Date.now());
    if (remainingMs <= 0) {
      throw new RpcError('DEADLINE_EXCEEDED', "the parent request's deadline has passed");
    }
    inherited.timeoutMs = Math.min(
      resolveTimeoutMs(options.timeoutMs, defaultTimeoutMs),
      remainingMs,
    );
  }
  inherited.signal = options.signal
    ? AbortSignal.any([options.signal, parent.signal])
    : parent.signal;
  return inherited;
}

const CALL_OPTION_NAMES_LIST = {
  timeoutMs: true,
  signal: true,
  headers: true,
  parent: true,
  idempotent: true,
  method: true,
} satisfies Record<keyof CallOptions, true>;

/** The names of {@link CallOptions}. */
export const CALL_OPTION_NAMES = optionNames(CALL_OPTION_NAMES_LIST);

/** The names of {@link StreamOptions}. */
export const STREAM_OPTION_NAMES = optionNames({
  ...CALL_OPTION_NAMES_LIST,
  window: true,
} satisfies Record<keyof StreamOptions, true>);

/** The names of {@link BroadcastOptions}. */
export const BROADCAST_OPTION_NAMES = optionNames({
  timeoutMs: true,
  max: true,
  signal: true,
  headers: true,
} satisfies Record<keyof BroadcastOptions, true>);

/** Validates a per-call timeout; returns the default when none is given. */
export function resolveTimeoutMs(timeoutMs: number | undefined, fallback: number): number {
  return integer('timeoutMs', timeoutMs, fallback, 1, MAX_TIMEOUT_MS);
}

/** The `method` option, checked: a non-empty string an AMQP short string (`type`) can hold. */
export function checkMethodName(method: unknown): asserts method is string {
  if (typeof method !== 'string' || method.length === 0)
    invalid(`method must be a non-empty string; got ${JSON.stringify(method)}`);
  if (method.length > 85 && Buffer.byteLength(method) > 255) {
    invalid('method must be at most 255 bytes');
  }
}

/** Throws INVALID_ARGUMENT unless `name` is a non-empty string an AMQP short string can hold. */
export function checkQueueName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0)
    invalid(`queue name must be a non-empty string; got ${JSON.stringify(name)}`);
  // UTF-8 takes at most 3 bytes per UTF-16 unit: short names need no count (every call).
  if (name.length > 85 && Buffer.byteLength(name) > 255) {
    invalid('queue name must be at most 255 bytes');
  }
}
