import { Buffer } from 'node:buffer';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { RpcError } from '../errors.js';
import type { AmqpTransport } from '../transport/types.js';
import type { CallInterceptor, ServeInterceptor } from '../interceptors.js';
import { safeLogger, type Logger } from '../logger.js';
import { checkOptionNames, optionNames } from '../option-names.js';

/** Where replies come back to the caller. docs/decisions.md explains the default. */
export type ReplyMode = 'queue' | 'direct' | 'expiring-queue';

/** Options of {@link connect}. Every field is optional. */
export interface ConnectOptions {
  /**
   * Broker URL, or several tried in turn until one answers.
   * @default process.env.AMQP_URL, else 'amqp://guest:guest@localhost:5672'
   */
  url?: string | readonly string[] | undefined;
  /** How long `connect()` may take per URL before it gives up. @default 10000 */
  connectTimeoutMs?: number;
  /** AMQP heartbeat interval in seconds; 0 turns heartbeats off. @default 10 */
  heartbeatSec?: number;
  /** Largest AMQP frame in bytes; larger bodies are split into frames. @default 131072 */
  frameMax?: number;
  /** Connection name shown by `rabbitmqctl list_connections` and the management UI. */
  connectionName?: string;
  /**
   * The AMQP `user_id` sent with every request, which servers read as `ctx.userId`.
   * RabbitMQ refuses a publish whose `user_id` is not the connection's login, so servers
   * can trust it. A string for a login the URL does not show (EXTERNAL/certificate auth
   * through a custom transport); `false` sends none.
   * @default the URL's user name, else `guest` (the login the AMQP client uses then)
   */
  userId?: string | false;
  /** Largest request or reply body accepted or sent, in bytes. @default 16777216 (16 MiB) */
  maxPayloadBytes?: number;
  /** Timeout of calls that set no `timeoutMs`. @default 30000 */
  defaultTimeoutMs?: number;
  /**
   * Publish requests in confirm mode. A request the broker refuses (nack: a full queue
   * with `reject-publish`, a quorum queue without a leader) fails at once with UNAVAILABLE
   * (safe to retry: the broker took nothing), and the caller's channel is replaced, which
   * is what lets calls go on after a cluster node dies. @default true
   */
  publisherConfirms?: boolean;
  /**
   * Opt-in: calls to the same queue made in the same tick travel in one AMQP message, and
   * their replies come back in one, so the broker's per-message work is paid once per batch
   * (docs/protocol.md, "Batches"). Only for queues served by rabbit-rpc servers of this
   * version or later; an older or a foreign server answers a batch with INVALID_ARGUMENT.
   * A call alone in its tick, a request over 16 KiB, a call with bytes (not JSON), an
   * idempotent call, a stream and a broadcast are sent as usual. Trade-offs: docs/decisions.md. `true` takes the
   * defaults. @default false
   */
  batch?: boolean | BatchOptions;
  /**
   * `'queue'`: one exclusive, server-named reply queue per connection (as in RabbitMQ's RPC tutorial).
   * `'direct'`: RabbitMQ's Direct Reply-to pseudo-queue, no queue declared.
   * `'expiring-queue'`: a named reply queue that outlives a short disconnect (deleted by the
   * broker `replyQueueExpiresMs` after its consumer is gone): calls pending across a
   * reconnect keep waiting and get their replies. docs/reliability.md compares the modes.
   * @default 'queue'
   */
  replyMode?: ReplyMode;
  /** With `replyMode: 'expiring-queue'`, how long the reply queue survives without a consumer. @default 60000 */
  replyQueueExpiresMs?: number;
  /** Aborts `connect()` while it is in progress. */
  signal?: AbortSignal;
  /** Extra options for `amqps://` URLs (CA, client certificate, ...), passed to `tls.connect`. */
  tls?: TlsConnectionOptions;
  /**
   * Reconnect after an unexpected loss, with exponential backoff and jitter between
   * `initialDelayMs` and `maxDelayMs`, trying every URL in turn; `false` turns it off.
   * A refused login or vhost ends the retries. @default { initialDelayMs: 100, maxDelayMs: 10000 }
   */
  reconnect?: false | ReconnectOptions;
  /** Wrap every call of this connection, the first outermost (auth, logging, tracing). */
  callInterceptors?: readonly CallInterceptor[];
  /** Wrap every request of every server of this connection, outside each server's own. */
  serveInterceptors?: readonly ServeInterceptor[];
  /** A pino-style logger; rabbit-rpc logs nothing without one, and never payloads or passwords. */
  logger?: Logger;
  /**
   * How connections are opened. The default is a real AMQP connection over TCP or TLS;
   * `rabbit-rpc/testing`'s in-memory broker supplies one for unit tests.
   */
  transport?: AmqpTransport;
}

/** Options of {@link ConnectOptions.batch}. */
export interface BatchOptions {
  /** Most calls in one message. @default 64 */
  maxCalls?: number;
  /** Most request bytes in one message; larger requests are sent on their own. @default 262144 */
  maxBytes?: number;
}

/** Backoff of {@link ConnectOptions.reconnect}. */
export interface ReconnectOptions {
  /** First delay before reconnecting. @default 100 */
  initialDelayMs?: number;
  /** Longest delay between attempts. @default 10000 */
  maxDelayMs?: number;
}

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

/** {@link ConnectOptions.batch}, checked, with its defaults filled in. */
function resolveBatch(value: ConnectOptions['batch']): false | Required<BatchOptions> {
  if (value === undefined || value === false) return false;
  const untrusted: unknown = value; // JavaScript callers can pass anything
  if (value !== true && (typeof untrusted !== 'object' || untrusted === null)) {
    invalid('batch must be true, false or { maxCalls, maxBytes }');
  }
  const given = value === true ? {} : value;
  checkOptionNames(given, BATCH_OPTION_NAMES, 'batch');
  return {
    maxCalls: integer('batch.maxCalls', given.maxCalls, 64, 2, 10_000),
    maxBytes: integer('batch.maxBytes', given.maxBytes, 256 * 1024, 1_024, 16 * 1024 * 1024),
  };
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

/** Bounds of a server's deduplication cache; see {@link ServeOptions.dedupe}. */
export interface DedupeOptions {
  /** Most replies kept; the least recently used goes first. @default 10000 */
  maxEntries?: number;
  /** Most reply bytes kept (bodies plus a small overhead per entry). @default 33554432 (32 MiB) */
  maxBytes?: number;
  /** Longest a reply is kept, and never past its request's deadline. @default 300000 (5 min) */
  ttlMs?: number;
}

/** Options of {@link RpcConnection.serve}. */
export interface ServeOptions {
  /** How many requests this server runs at once (AMQP prefetch). @default 10 */
  prefetch?: number;
  /** Declare the queue if it does not exist. `false` uses an existing queue as is. @default true */
  declare?: boolean;
  /**
   * Declare the queue durable: its definition survives broker restarts (the requests in it
   * stay transient). `false` asks for a non-durable queue, which RabbitMQ 4.3 refuses by
   * default (deprecated feature `transient_nonexcl_queues`). A queue that already exists
   * with other flags is served as it is (docs/decisions.md, "Queues that every RabbitMQ from 3.10 to 4.3 accepts").
   * @default true
   */
  durable?: boolean;
  /** Declare the queue auto-delete: the broker deletes it when its last consumer goes. @default false */
  autoDelete?: boolean;
  /**
   * How long `close()` waits for running handlers before it aborts their `ctx.signal` and
   * gives their requests back to the broker. @default 30000
   */
  drainTimeoutMs?: number;
  /** Send the handler's stack trace with error replies (development only). @default false */
  exposeErrorStack?: boolean;
  /**
   * Refuse requests without a `user_id`: they get an UNAUTHENTICATED error reply and are
   * acked, never run. Callers send one by default (`ConnectOptions.userId`). @default false
   */
  requireUserId?: boolean;
  /**
   * `'quorum'` declares a replicated quorum queue (always durable), for requests that must
   * survive the loss of a cluster node; `'classic'` a classic queue. Unset, the declaration
   * names no type and the vhost's default queue type applies: classic, unless the vhost
   * sets `default_queue_type` (managed services often set quorum).
   * @default the vhost's default queue type
   */
  queueType?: 'classic' | 'quorum';
  /**
   * Dead-letter exchange of the queue (`x-dead-letter-exchange`). When set, requests that
   * cannot be decoded are dead-lettered after their error reply instead of being acked.
   */
  deadLetterExchange?: string;
  /** Routing key for dead-lettered requests (`x-dead-letter-routing-key`). */
  deadLetterRoutingKey?: string;
  /** Quorum queues only: dead-letter (or drop) a request after this many deliveries (`x-delivery-limit`). */
  deliveryLimit?: number;
  /** Further queue arguments, passed to `queue.declare` as they are. */
  queueArguments?: Readonly<Record<string, string | number | boolean>>;
  /** Wrap every request of this server, inside the connection's `serveInterceptors`. */
  interceptors?: readonly ServeInterceptor[];
  /**
   * Deduplication of requests that carry an AMQP `message_id` (rabbit-rpc sends one for
   * idempotent calls only): a duplicate of a request still running waits for it, and a
   * duplicate of one answered is sent the same reply again; the handler runs once. Kept
   * in this server's memory, bounded by entries, bytes and time; `false` turns it off.
   * Requests without `message_id` are not looked at. @default { maxEntries: 10000,
   * maxBytes: 33554432, ttlMs: 300000 }
   */
  dedupe?: DedupeOptions | false;
  /**
   * Batches from callers with `batch: true` (docs/protocol.md, "Batches"): `false` refuses
   * them (the batch's calls fail with UNIMPLEMENTED), an object bounds them. A batch over
   * either bound is refused as a whole: all its calls fail with RESOURCE_EXHAUSTED. Batch
   * entries count against `prefetch` like requests, whatever their number.
   * @default { maxEntries: 1000, maxBytes: 1048576 } (a caller's default batches are at
   *   most 64 calls and about 256 KiB)
   */
  batch?: boolean | ServeBatchOptions;
}

/** Bounds of the batches a server takes; see {@link ServeOptions.batch}. */
export interface ServeBatchOptions {
  /** Most calls in one batch. @default 1000 */
  maxEntries?: number;
  /** Most bytes in one batch message (never more than `maxPayloadBytes`). @default 1048576 */
  maxBytes?: number;
}

export const DEFAULT_URL = 'amqp://guest:guest@localhost:5672';

// The names of each options interface, for the run-time check of unknown options
// (option-names.ts). `satisfies` makes the compiler keep each list equal to its interface.
const CONNECT_OPTION_NAMES = optionNames({
  url: true,
  connectTimeoutMs: true,
  heartbeatSec: true,
  frameMax: true,
  connectionName: true,
  userId: true,
  maxPayloadBytes: true,
  defaultTimeoutMs: true,
  publisherConfirms: true,
  batch: true,
  replyMode: true,
  replyQueueExpiresMs: true,
  signal: true,
  tls: true,
  reconnect: true,
  callInterceptors: true,
  serveInterceptors: true,
  logger: true,
  transport: true,
} satisfies Record<keyof ConnectOptions, true>);
const RECONNECT_OPTION_NAMES = optionNames({
  initialDelayMs: true,
  maxDelayMs: true,
} satisfies Record<keyof ReconnectOptions, true>);
const BATCH_OPTION_NAMES = optionNames({
  maxCalls: true,
  maxBytes: true,
} satisfies Record<keyof BatchOptions, true>);
const CALL_OPTION_NAMES_LIST = {
  timeoutMs: true,
  signal: true,
  headers: true,
  parent: true,
  idempotent: true,
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
const SERVE_OPTION_NAMES_LIST = {
  prefetch: true,
  declare: true,
  durable: true,
  autoDelete: true,
  drainTimeoutMs: true,
  exposeErrorStack: true,
  requireUserId: true,
  queueType: true,
  deadLetterExchange: true,
  deadLetterRoutingKey: true,
  deliveryLimit: true,
  queueArguments: true,
  interceptors: true,
  dedupe: true,
  batch: true,
} satisfies Record<keyof ServeOptions, true>;
/** The names of {@link ServeOptions}, for contracts' serve options to extend. */
export const SERVE_OPTION_NAMES = optionNames(SERVE_OPTION_NAMES_LIST);
/** The names of {@link ServeOptions} plus `extra`. */
export function serveOptionNamesWith(extra: Readonly<Record<string, true>>): ReadonlySet<string> {
  return optionNames({ ...SERVE_OPTION_NAMES_LIST, ...extra });
}
const SERVE_BATCH_OPTION_NAMES = optionNames({
  maxEntries: true,
  maxBytes: true,
} satisfies Record<keyof ServeBatchOptions, true>);
const DEDUPE_OPTION_NAMES = optionNames({
  maxEntries: true,
  maxBytes: true,
  ttlMs: true,
} satisfies Record<keyof DedupeOptions, true>);

export const CONNECT_DEFAULTS = {
  connectTimeoutMs: 10_000,
  heartbeatSec: 10,
  frameMax: 131_072,
  maxPayloadBytes: 16 * 1024 * 1024,
  defaultTimeoutMs: 30_000,
  replyMode: 'queue',
  replyQueueExpiresMs: 60_000,
  reconnect: { initialDelayMs: 100, maxDelayMs: 10_000 },
} as const;

export const SERVE_DEFAULTS = {
  prefetch: 10,
  declare: true,
  durable: true,
  drainTimeoutMs: 30_000,
  exposeErrorStack: false,
  dedupe: { maxEntries: 10_000, maxBytes: 32 * 1024 * 1024, ttlMs: 300_000 },
  batch: { maxEntries: 1_000, maxBytes: 1024 * 1024 },
} as const;

/** The largest delay a Node timer accepts (about 24.8 days). */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** {@link ConnectOptions} after defaults and validation. */
export interface ResolvedConnectOptions {
  readonly urls: readonly string[];
  readonly connectTimeoutMs: number;
  readonly heartbeatSec: number;
  readonly frameMax: number;
  readonly connectionName: string | undefined;
  /** The `user_id` of every request; undefined sends none. */
  readonly userId: string | undefined;
  readonly maxPayloadBytes: number;
  readonly defaultTimeoutMs: number;
  readonly publisherConfirms: boolean;
  readonly batch: false | Required<BatchOptions>;
  readonly replyMode: ReplyMode;
  readonly replyQueueExpiresMs: number;
  readonly signal: AbortSignal | undefined;
  readonly tls: TlsConnectionOptions | undefined;
  readonly reconnect: false | Required<ReconnectOptions>;
  readonly callInterceptors: readonly CallInterceptor[];
  readonly serveInterceptors: readonly ServeInterceptor[];
  readonly logger: Logger;
  /** Undefined: a real AMQP connection (`openAmqp`), chosen where connections are opened. */
  readonly transport: AmqpTransport | undefined;
}

export interface ResolvedServeOptions {
  readonly prefetch: number;
  readonly declare: boolean;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly drainTimeoutMs: number;
  readonly exposeErrorStack: boolean;
  readonly requireUserId: boolean;
  /** Whether undecodable requests are dead-lettered rather than acked. */
  readonly deadLetter: boolean;
  /** The `queue.declare` arguments. */
  readonly queueArguments: Readonly<Record<string, string | number | boolean>>;
  /**
   * The options the application set that shape the queue's declaration. Without any, a
   * queue that exists with other flags is served as it is; with some, the mismatch fails.
   */
  readonly queueOptionsGiven: readonly string[];
  readonly dedupe: false | Required<DedupeOptions>;
  readonly batch: false | Required<ServeBatchOptions>;
}

export function resolveConnectOptions(
  input: string | ConnectOptions | undefined,
): ResolvedConnectOptions {
  const options: ConnectOptions = typeof input === 'string' ? { url: input } : (input ?? {});
  const untrusted: unknown = options; // JavaScript callers can pass anything
  if (typeof untrusted !== 'object' || untrusted === null) {
    invalid(`connect() takes a URL string or an options object`);
  }
  checkOptionNames(options, CONNECT_OPTION_NAMES, 'connect()');
  const fromEnvironment = options.url === undefined && process.env['AMQP_URL'] !== undefined;
  const url = options.url ?? process.env['AMQP_URL'] ?? DEFAULT_URL;
  const urls = typeof url === 'string' ? [url] : [...url];
  if (urls.length === 0) invalid('url: give at least one broker URL');
  // A URL from the environment is named as such: the caller may never have written one.
  for (const u of urls) checkUrl(u, fromEnvironment ? 'AMQP_URL' : 'url');
  const replyMode: unknown = options.replyMode ?? CONNECT_DEFAULTS.replyMode;
  if (replyMode !== 'queue' && replyMode !== 'direct' && replyMode !== 'expiring-queue') {
    invalid(`replyMode must be 'queue', 'direct' or 'expiring-queue'; got ${String(replyMode)}`);
  }
  return {
    urls,
    connectTimeoutMs: integer(
      'connectTimeoutMs',
      options.connectTimeoutMs,
      CONNECT_DEFAULTS.connectTimeoutMs,
      1,
      MAX_TIMEOUT_MS,
    ),
    heartbeatSec: integer(
      'heartbeatSec',
      options.heartbeatSec,
      CONNECT_DEFAULTS.heartbeatSec,
      0,
      65_535,
    ),
    frameMax: integer('frameMax', options.frameMax, CONNECT_DEFAULTS.frameMax, 8192, 2 ** 31 - 1),
    connectionName: options.connectionName,
    userId: resolveUserId(options.userId, urls),
    maxPayloadBytes: integer(
      'maxPayloadBytes',
      options.maxPayloadBytes,
      CONNECT_DEFAULTS.maxPayloadBytes,
      1,
      2 ** 31 - 1,
    ),
    defaultTimeoutMs: integer(
      'defaultTimeoutMs',
      options.defaultTimeoutMs,
      CONNECT_DEFAULTS.defaultTimeoutMs,
      1,
      MAX_TIMEOUT_MS,
    ),
    replyMode,
    publisherConfirms: boolean('publisherConfirms', options.publisherConfirms, true),
    batch: resolveBatch(options.batch),
    replyQueueExpiresMs: integer(
      'replyQueueExpiresMs',
      options.replyQueueExpiresMs,
      CONNECT_DEFAULTS.replyQueueExpiresMs,
      1_000,
      MAX_TIMEOUT_MS,
    ),
    signal: options.signal,
    tls: options.tls,
    reconnect: resolveReconnect(options.reconnect),
    callInterceptors: functions('callInterceptors', options.callInterceptors),
    serveInterceptors: functions('serveInterceptors', options.serveInterceptors),
    logger: safeLogger(options.logger),
    transport: options.transport,
  };
}

/** The serve options that change what `queue.declare` asks for. */
const QUEUE_SHAPING_OPTIONS = [
  'durable',
  'autoDelete',
  'queueType',
  'deliveryLimit',
  'deadLetterExchange',
  'deadLetterRoutingKey',
  'queueArguments',
] as const satisfies ReadonlyArray<keyof ServeOptions>;

export function resolveServeOptions(options: ServeOptions = {}): ResolvedServeOptions {
  const untrusted: unknown = options; // JavaScript callers can pass anything
  if (typeof untrusted !== 'object' || untrusted === null)
    invalid('serve() options must be an object');
  checkOptionNames(options, SERVE_OPTION_NAMES, 'serve()');
  const queueType: unknown = options.queueType ?? 'classic';
  if (queueType !== 'classic' && queueType !== 'quorum') {
    invalid(`queueType must be 'classic' or 'quorum'; got ${String(queueType)}`);
  }
  const quorum = queueType === 'quorum';
  if (quorum && options.durable === false) invalid('a quorum queue is always durable');
  if (!quorum && options.deliveryLimit !== undefined) {
    invalid("deliveryLimit needs queueType: 'quorum' (classic queues count no deliveries)");
  }
  const queueArguments: Record<string, string | number | boolean> = { ...options.queueArguments };
  if (options.queueType !== undefined) queueArguments['x-queue-type'] = queueType;
  if (options.deliveryLimit !== undefined) {
    queueArguments['x-delivery-limit'] = integer(
      'deliveryLimit',
      options.deliveryLimit,
      0,
      1,
      2 ** 31 - 1,
    );
  }
  if (options.deadLetterExchange !== undefined) {
    if (typeof options.deadLetterExchange !== 'string')
      invalid('deadLetterExchange must be a string');
    queueArguments['x-dead-letter-exchange'] = options.deadLetterExchange;
  }
  if (options.deadLetterRoutingKey !== undefined) {
    if (typeof options.deadLetterRoutingKey !== 'string')
      invalid('deadLetterRoutingKey must be a string');
    queueArguments['x-dead-letter-routing-key'] = options.deadLetterRoutingKey;
  }
  return {
    queueArguments,
    queueOptionsGiven: QUEUE_SHAPING_OPTIONS.filter((name) => options[name] !== undefined),
    deadLetter: options.deadLetterExchange !== undefined,
    prefetch: integer('prefetch', options.prefetch, SERVE_DEFAULTS.prefetch, 1, 65_535),
    declare: boolean('declare', options.declare, SERVE_DEFAULTS.declare),
    durable: quorum || boolean('durable', options.durable, SERVE_DEFAULTS.durable),
    autoDelete: boolean('autoDelete', options.autoDelete, false),
    drainTimeoutMs: integer(
      'drainTimeoutMs',
      options.drainTimeoutMs,
      SERVE_DEFAULTS.drainTimeoutMs,
      0,
      MAX_TIMEOUT_MS,
    ),
    exposeErrorStack: boolean(
      'exposeErrorStack',
      options.exposeErrorStack,
      SERVE_DEFAULTS.exposeErrorStack,
    ),
    requireUserId: boolean('requireUserId', options.requireUserId, false),
    dedupe: resolveDedupe(options.dedupe),
    batch: resolveServeBatch(options.batch),
  };
}

function resolveServeBatch(value: ServeOptions['batch']): false | Required<ServeBatchOptions> {
  if (value === false) return false;
  const given: unknown = value ?? true; // JavaScript callers can pass anything
  if (given !== true && (typeof given !== 'object' || given === null)) {
    invalid('batch must be true, false or { maxEntries, maxBytes }');
  }
  const limits = typeof value === 'object' ? value : {};
  if (typeof value === 'object') checkOptionNames(value, SERVE_BATCH_OPTION_NAMES, 'batch');
  const defaults = SERVE_DEFAULTS.batch;
  return {
    maxEntries: integer('batch.maxEntries', limits.maxEntries, defaults.maxEntries, 1, 1_000_000),
    maxBytes: integer('batch.maxBytes', limits.maxBytes, defaults.maxBytes, 1, 2 ** 31 - 1),
  };
}

function resolveDedupe(value: ServeOptions['dedupe']): false | Required<DedupeOptions> {
  if (value === false) return false;
  const untrusted: unknown = value; // JavaScript callers can pass anything
  if (untrusted !== undefined && (typeof untrusted !== 'object' || untrusted === null)) {
    invalid('dedupe must be false or an object');
  }
  const defaults = SERVE_DEFAULTS.dedupe;
  if (value !== undefined) checkOptionNames(value, DEDUPE_OPTION_NAMES, 'dedupe');
  return {
    maxEntries: integer(
      'dedupe.maxEntries',
      value?.maxEntries,
      defaults.maxEntries,
      1,
      2 ** 31 - 1,
    ),
    maxBytes: integer('dedupe.maxBytes', value?.maxBytes, defaults.maxBytes, 1, 2 ** 53 - 1),
    ttlMs: integer('dedupe.ttlMs', value?.ttlMs, defaults.ttlMs, 1, MAX_TIMEOUT_MS),
  };
}

/** Validates a per-call timeout; returns the default when none is given. */
export function resolveTimeoutMs(timeoutMs: number | undefined, fallback: number): number {
  return integer('timeoutMs', timeoutMs, fallback, 1, MAX_TIMEOUT_MS);
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

/**
 * Throws INVALID_ARGUMENT unless `url` is an `amqp://` or `amqps://` URL. `label` names
 * where it came from (`url`, `AMQP_URL`, `--url`), so that the message says what to fix.
 */
export function checkUrl(url: unknown, label = 'url'): asserts url is string {
  if (typeof url !== 'string') invalid(`${label} must be a string; got ${typeof url}`);
  const example = 'amqp://user:password@host:5672/vhost';
  if (url.trim() === '') {
    invalid(
      `${label} is empty: give a broker URL such as ${example}` +
        (label === 'AMQP_URL' ? `, or unset AMQP_URL to use ${redactUrl(DEFAULT_URL)}` : ''),
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Most often a user name or password with a '/', '?', '#' or '@' of its own.
    invalid(
      `${label} is not a valid URL: "${redactUrl(url)}"; expected ${example} (percent-encode special characters in the user name and password: encodeURIComponent)`,
    );
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    invalid(`${label} must start with amqp:// or amqps://; got "${redactUrl(url)}"`);
  }
  // An '@' after the host means the user information was cut short by an unencoded '/',
  // '?' or '#' (`amqp://user:12/34@host` parses as the host "user" and the vhost "34@host"):
  // connecting would send the password's tail to the broker as a vhost name, and show it
  // in every error about the connection.
  if (`${parsed.pathname}${parsed.search}${parsed.hash}`.includes('@')) {
    invalid(
      `${label} has an '@' after the host: ${redactUrl(url)} (percent-encode '/', '?', '#' and '@' in the user name, password and vhost: encodeURIComponent)`,
    );
  }
}

/**
 * The URL with its password replaced by `***`, safe for errors, logs and `--verbose`.
 * Read from the text, not from a URL parser: a password with an unencoded `/`, `?` or `#`
 * does not parse as a password (`amqp://user:12/34@host` is the host `user`, port 12 and
 * the vhost `34@host`), and a parser would leave it in plain sight. So everything between
 * `://` and the last `@` is hidden, except a user name that is plainly one.
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at === -1) return url; // no user information
  const scheme = url.indexOf('://');
  const start = scheme === -1 || scheme > at ? 0 : scheme + 3;
  const userInfo = url.slice(start, at);
  const colon = userInfo.indexOf(':');
  const user = colon === -1 ? userInfo : userInfo.slice(0, colon);
  const shown = /[/?#\\]/.test(user) ? '***' : colon === -1 ? user : `${user}:***`;
  return `${url.slice(0, start)}${shown}@${url.slice(at + 1)}`;
}

/**
 * The `user_id` requests carry: the login of the URLs unless `userId` says otherwise. The
 * broker refuses a publish whose `user_id` is not the login, so one that cannot be known
 * (URLs with different users) is an error rather than a guess.
 */
function resolveUserId(
  value: string | false | undefined,
  urls: readonly string[],
): string | undefined {
  if (value === false) return undefined;
  if (value !== undefined) {
    if (typeof value !== 'string' || value.length === 0)
      invalid(`userId must be a non-empty string or false; got ${JSON.stringify(value)}`);
    if (Buffer.byteLength(value) > 255) invalid('userId must be at most 255 bytes');
    return value;
  }
  const users = new Set(urls.map(loginOf));
  const [user] = users;
  if (users.size !== 1 || user === undefined) {
    invalid('the URLs log in as different users: set userId (the one to send, or false)');
  }
  return user;
}

/** The user @cloudamqp/amqp-client logs in as for `url`: its user name, else `guest`. */
function loginOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username) || 'guest';
  } catch {
    invalid(`url has a malformed user name: ${redactUrl(url)}`);
  }
}

function resolveReconnect(value: ConnectOptions['reconnect']): false | Required<ReconnectOptions> {
  if (value === false) return false;
  const defaults = CONNECT_DEFAULTS.reconnect;
  const untrusted: unknown = value; // JavaScript callers can pass anything
  if (untrusted !== undefined && (typeof untrusted !== 'object' || untrusted === null))
    invalid('reconnect must be false or an object');
  if (value !== undefined) checkOptionNames(value, RECONNECT_OPTION_NAMES, 'reconnect');
  const initialDelayMs = integer(
    'reconnect.initialDelayMs',
    value?.initialDelayMs,
    defaults.initialDelayMs,
    0,
    MAX_TIMEOUT_MS,
  );
  const maxDelayMs = integer(
    'reconnect.maxDelayMs',
    value?.maxDelayMs,
    defaults.maxDelayMs,
    initialDelayMs,
    MAX_TIMEOUT_MS,
  );
  return { initialDelayMs, maxDelayMs };
}

function functions<T>(name: string, value: readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  const list: unknown = value;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'function')) {
    invalid(`${name} must be an array of functions`);
  }
  return value.slice();
}

function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(`${name} must be an integer from ${min} to ${max}; got ${String(value)}`);
  }
  return value;
}

function boolean(name: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(`${name} must be true or false; got ${String(value)}`);
  return value;
}

function invalid(message: string): never {
  throw new RpcError('INVALID_ARGUMENT', message);
}
