/** Options of `serve()`, their defaults, and their resolution into what a server uses. */
import type { ServeInterceptor } from '../interceptors.js';
import { checkOptionNames, optionNames } from '../option-names.js';
import { MAX_TIMEOUT_MS, boolean, integer, invalid } from './validate.js';

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
   * Batches from callers (docs/protocol.md, "Batches"): the server says in its describe
   * answers that it reads them, and callers batch to its queue by default once every
   * consumer of it does (D36). `false` refuses them (the batch's calls fail with
   * UNIMPLEMENTED; only `batch: true` callers send any) and advertises none, so
   * negotiating callers send this queue plain requests; an object bounds them (advertised
   * too). A batch over either bound is refused as a whole: all its calls fail with
   * RESOURCE_EXHAUSTED. Batch entries count against `prefetch` like requests, whatever
   * their number.
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

export const SERVE_DEFAULTS = {
  prefetch: 10,
  declare: true,
  durable: true,
  drainTimeoutMs: 30_000,
  exposeErrorStack: false,
  dedupe: { maxEntries: 10_000, maxBytes: 32 * 1024 * 1024, ttlMs: 300_000 },
  batch: { maxEntries: 1_000, maxBytes: 1024 * 1024 },
} as const;

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
