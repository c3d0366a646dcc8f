/** Options of `connect()`, their defaults, and their resolution into what the connection uses. */
import { Buffer } from 'node:buffer';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { AmqpTransport } from '../transport/types.js';
import type { CallInterceptor, ServeInterceptor } from '../interceptors.js';
import { safeLogger, type Logger } from '../logger.js';
import { checkOptionNames, optionNames } from '../option-names.js';
import { DEFAULT_URL, checkUrl, loginOf } from './url.js';
import { MAX_TIMEOUT_MS, boolean, functions, integer, invalid } from './validate.js';

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
   * Calls to the same queue made in the same tick travel in one AMQP message, and their
   * replies come back in one, so the broker's per-message work is paid once per batch
   * (docs/protocol.md, "Batches"). By default only to queues whose every consumer is a
   * rabbit-rpc server that says it reads batches (asked on the control plane, compared
   * with the queue's consumer count, checked again while the queue is used): a queue with
   * a foreign or older server gets plain requests (docs/decisions.md, D36). `true` batches
   * to every queue without asking (for servers you know read batches); `false` never
   * batches. A call alone in its tick, a request over 16 KiB, a call with bytes (not JSON),
   * an idempotent call, a stream and a broadcast are sent as usual.
   * @default { maxCalls: 64, maxBytes: 262144, negotiate: true }
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
  /**
   * Batch to a queue only once every consumer of it is known to read batches (D36);
   * `false` batches to every queue without asking, as `batch: true` does. @default true
   */
  negotiate?: boolean;
}

/** {@link BatchOptions} after defaults and validation. */
export type ResolvedBatchOptions = Required<BatchOptions>;

/** Backoff of {@link ConnectOptions.reconnect}. */
export interface ReconnectOptions {
  /** First delay before reconnecting. @default 100 */
  initialDelayMs?: number;
  /** Longest delay between attempts. @default 10000 */
  maxDelayMs?: number;
}

/** {@link ConnectOptions.batch}, checked, with its defaults filled in. */
function resolveBatch(value: ConnectOptions['batch']): false | ResolvedBatchOptions {
  if (value === false) return false;
  const untrusted: unknown = value; // JavaScript callers can pass anything
  if (
    value !== undefined &&
    value !== true &&
    (typeof untrusted !== 'object' || untrusted === null)
  ) {
    invalid('batch must be true, false or { maxCalls, maxBytes, negotiate }');
  }
  // `true` is the opt-in of before D36: batch without asking.
  const given: BatchOptions =
    value === true ? { negotiate: false } : value === undefined ? {} : value;
  checkOptionNames(given, BATCH_OPTION_NAMES, 'batch');
  return {
    maxCalls: integer('batch.maxCalls', given.maxCalls, 64, 2, 10_000),
    maxBytes: integer('batch.maxBytes', given.maxBytes, 256 * 1024, 1_024, 16 * 1024 * 1024),
    negotiate: boolean('batch.negotiate', given.negotiate, true),
  };
}

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
  negotiate: true,
} satisfies Record<keyof BatchOptions, true>);

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
  readonly batch: false | ResolvedBatchOptions;
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
