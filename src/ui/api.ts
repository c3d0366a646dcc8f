/**
 * The HTTP API between the `rabbit-rpc ui` server and its page: JSON shapes only, shared by
 * both ends (the page is bundled for the browser, so this file imports nothing).
 *
 *   GET  /api/info        {@link InfoResponse}
 *   GET  /api/services    {@link ServicesResponse} (discovery; `?timeoutMs=` 100 to 10000)
 *   POST /api/call        {@link CallBody} → {@link CallOutcome}
 *   POST /api/broadcast   {@link BroadcastBody} → {@link BroadcastOutcome}
 *   POST /api/stream      {@link StreamBody} → `text/event-stream`: `item` events
 *                         ({@link StreamItemEvent}), then one `end` ({@link StreamEndEvent});
 *                         closing the response cancels the stream on the server
 *
 * Every API request carries `Authorization: Bearer <token>`. Errors of the API itself (a bad
 * body, a missing token, too many calls) are HTTP errors with an {@link ApiErrorBody}; the
 * outcome of a call, an error reply included, is a 200 with `ok: false`.
 */

/** An error as JSON: an RpcError code (the gRPC names), its message, its details if any. */
export interface ApiError {
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
}

/** The body of an HTTP error of the API. */
export interface ApiErrorBody {
  readonly error: ApiError;
}

/** Bounds the server applies to what the page sends. */
export interface UiLimits {
  /** Largest request body, in bytes. */
  readonly maxBodyBytes: number;
  /** Deepest nesting of a request body's JSON. */
  readonly maxJsonDepth: number;
  /** Calls and broadcasts in flight at once. */
  readonly maxCalls: number;
  /** Streams open at once. */
  readonly maxStreams: number;
  /** Largest `timeoutMs` of a call, stream or broadcast. */
  readonly maxTimeoutMs: number;
}

export interface InfoResponse {
  /** rabbit-rpc's version. */
  readonly version: string;
  /** The broker, without user name or password: `amqp://host:port/vhost`. */
  readonly broker: string;
  /** The connection's state: connected, blocked, reconnecting or closed. */
  readonly state: string;
  /** How often the page refreshes the services, in milliseconds. */
  readonly refreshMs: number;
  /** The `timeoutMs` used when the page gives none. */
  readonly defaultTimeoutMs: number;
  readonly limits: UiLimits;
}

/** `GET /api/state`: the ui server's connection to the broker, asked at every refresh. */
export interface StateResponse {
  /** connected, blocked (the broker holds publishers back), reconnecting or closed. */
  readonly state: string;
  /** How many times the connection has come back since the ui started. */
  readonly reconnects: number;
}

/** A JSON Schema as a service describes it. */
export type WireSchema = { readonly [key: string]: unknown } | boolean;

export interface WireMethod {
  readonly name: string;
  readonly stream: boolean;
  readonly idempotent: boolean;
  readonly input?: WireSchema;
  readonly output?: WireSchema;
  readonly errors: ReadonlyArray<{ readonly code: string; readonly details?: WireSchema }>;
}

export interface WireInstance {
  readonly queue: string;
  readonly service?: string;
  readonly instance: string;
  readonly library: { readonly name: string; readonly version: string };
  readonly startedAt: string;
  readonly inFlight: number;
  readonly prefetch: number;
  readonly counters: {
    readonly calls: number;
    readonly errors: Readonly<Record<string, number>>;
    readonly expired: number;
  };
}

export interface WireService {
  readonly queue: string;
  readonly service?: string;
  readonly methods: readonly WireMethod[];
  readonly consistent: boolean;
  readonly instances: readonly WireInstance[];
}

export interface ServicesResponse {
  readonly services: readonly WireService[];
  /** When the answers were collected (epoch ms, the server's clock). */
  readonly at: number;
  /** How long discovery took, in milliseconds. */
  readonly tookMs: number;
}

/** A call of `queue` (of its method `method`, or raw when absent). */
export interface CallBody {
  readonly queue: string;
  readonly method?: string;
  /** Any JSON value; null when absent. */
  readonly request?: unknown;
  /** The call's deadline in milliseconds, 1 to `limits.maxTimeoutMs`. */
  readonly timeoutMs?: number;
}

export interface StreamBody extends CallBody {
  /** Items the service may send ahead of those read, 1 to 10000. */
  readonly window?: number;
}

export interface BroadcastBody {
  readonly queue: string;
  readonly request?: unknown;
  readonly timeoutMs?: number;
  /** Stop once this many instances have replied. */
  readonly max?: number;
}

/**
 * A reply: JSON as it came; a reply in bytes (application/octet-stream) as base64 with
 * `binary: true`.
 */
export type CallOutcome =
  | {
      readonly ok: true;
      readonly reply: unknown;
      readonly binary?: true;
      readonly latencyMs: number;
    }
  | { readonly ok: false; readonly error: ApiError; readonly latencyMs: number };

export type BroadcastRow =
  | { readonly instance: string; readonly ok: true; readonly reply: unknown }
  | { readonly instance: string; readonly ok: false; readonly error: ApiError };

export interface BroadcastOutcome {
  /** One row per instance that answered; none when nothing serves the queue. */
  readonly replies: readonly BroadcastRow[];
  readonly latencyMs: number;
}

/** `event: item`: one item of a streamed reply. */
export interface StreamItemEvent {
  /** 1 for the first item. */
  readonly seq: number;
  readonly item: unknown;
  readonly binary?: true;
  /** Milliseconds since the stream was asked for. */
  readonly atMs: number;
}

/** `event: end`: the stream is over, with its error if it failed. */
export interface StreamEndEvent {
  readonly count: number;
  readonly latencyMs: number;
  readonly error?: ApiError;
}
