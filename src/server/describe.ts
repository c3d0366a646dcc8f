import type {
  BatchAdvertisement,
  ContractDescription,
  InstanceDescription,
} from '../protocol/describe.js';
import { DESCRIBE_VERSION, LIBRARY, PROTOCOL_VERSION } from '../protocol/describe.js';

/** What a server knows about itself when asked to describe itself. */
export interface DescribeSnapshot {
  readonly queue: string;
  /** The contract it serves; undefined for a plain `serve(queue, handler)`. */
  readonly contract: ContractDescription | undefined;
  /** Its connection's control queue: where the describe request reached it. */
  readonly instance: string;
  readonly startedAt: number;
  readonly inFlight: number;
  readonly prefetch: number;
  readonly replied: number;
  readonly expired: number;
  readonly errors: ErrorCounts;
  /** The batches it reads; undefined when it takes none (`batch: false`). */
  readonly batch: BatchAdvertisement | undefined;
}

/**
 * Error replies by code, for the describe answer. A handful of codes at most (the closed
 * set of RpcError codes), so a plain object is enough.
 */
export class ErrorCounts {
  readonly #counts: Record<string, number> = {};

  count(code: string): void {
    this.#counts[code] = (this.#counts[code] ?? 0) + 1;
  }

  snapshot(): Record<string, number> {
    return { ...this.#counts };
  }
}

/**
 * What describe answers say about the batches a server reads (D36): what callers that
 * negotiate batching cap their batches at. Undefined with `batch: false`.
 */
export function batchAdvertisement(
  limits: false | { readonly maxEntries: number; readonly maxBytes: number },
  maxPayloadBytes: number,
): BatchAdvertisement | undefined {
  if (limits === false) return undefined;
  return { maxCalls: limits.maxEntries, maxBytes: Math.min(maxPayloadBytes, limits.maxBytes) };
}

/** The body of the describe reply (docs/protocol.md, "Describe and discovery"). */
export function describeInstance(snapshot: DescribeSnapshot): InstanceDescription {
  const description: InstanceDescription = {
    describe: DESCRIBE_VERSION,
    queue: snapshot.queue,
    methods: snapshot.contract?.methods ?? [],
    library: LIBRARY,
    protocol: PROTOCOL_VERSION,
    instance: snapshot.instance,
    startedAt: new Date(snapshot.startedAt).toISOString(),
    inFlight: snapshot.inFlight,
    prefetch: snapshot.prefetch,
    counters: {
      calls: snapshot.replied,
      errors: snapshot.errors.snapshot(),
      expired: snapshot.expired,
    },
    ...(snapshot.batch === undefined ? {} : { batch: snapshot.batch }),
  };
  return snapshot.contract ? { ...description, service: snapshot.contract.service } : description;
}

/** How many describe requests one server answers per second; the rest are dropped. */
export const DESCRIBE_ANSWERS_PER_SECOND = 20;

/**
 * A bound on describe answers (docs/security.md, "Describe requests"): anyone who may
 * publish to the control exchange can ask every server for a describe answer, so each
 * server answers at most `perSecond` of them in a second (a fixed window) and drops the
 * rest. Discovery asks once per server; a tool that polls stays far below it.
 */
export class DescribeBudget {
  #windowStart = -Infinity;
  #used = 0;
  /** Dropped since the start of the window: for one log line per window. */
  #dropped = 0;

  constructor(
    private readonly perSecond: number = DESCRIBE_ANSWERS_PER_SECOND,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * True when one more answer may go out now. False: drop it; `first` tells whether it is
   * the window's first drop (log once per window, not per request).
   */
  take(): { ok: true } | { ok: false; first: boolean } {
    const now = this.now();
    if (now - this.#windowStart >= 1_000) {
      this.#windowStart = now;
      this.#used = 0;
      this.#dropped = 0;
    }
    if (this.#used < this.perSecond) {
      this.#used++;
      return OK;
    }
    this.#dropped++;
    return { ok: false, first: this.#dropped === 1 };
  }
}

const OK = { ok: true } as const;
