import type { AmqpProperties } from '../transport/types.js';
import { RpcError, type RpcErrorCode } from '../errors.js';
import type { BodyPool, PooledBody } from './body-pool.js';
import { CallDeadlines, type Deadline } from './call-deadlines.js';
import { IdTable } from './id-table.js';
import type { MultiReply } from './multi-reply.js';
import type { RetryPolicy, RetryState } from './retry.js';

/** One call waiting for its reply. A class, not a closure, to keep per-call cost low. */
export class PendingCall {
  deadline: Deadline | undefined;
  onAbort: (() => void) | undefined;
  /** The request went out: the server may be running it (worth a cancel). */
  published = false;
  /** Set for idempotent calls only: they are published again on UNAVAILABLE. */
  retry: RetryState | undefined;
  /** With batching on: what the call needs to travel as a batch entry, when it may. */
  entryParts: EntryParts | undefined;
  /** Its batch entry, written only once another call joins its batch (a lone call goes plain). */
  entry: string | undefined;
  /** The batch it was sent in, if it was. */
  batch: SentBatch | undefined;
  /** Set when `body` lives in a pooled buffer, given back when the call settles. */
  pooled: PooledBody | undefined;
  constructor(
    readonly id: string,
    readonly queue: string,
    readonly body: Uint8Array,
    readonly properties: AmqpProperties,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: RpcError) => void,
    readonly signal: AbortSignal | undefined,
    readonly multi: MultiReply | undefined,
  ) {}
}

/** What a call carries into a batch entry besides its id and body (docs/protocol.md, "Batches"). */
export interface EntryParts {
  readonly deadline: number;
  readonly method: string | undefined;
  readonly headers: Readonly<Record<string, string | number | boolean>> | undefined;
}

/** A call that may travel in a batch: the only kind the Batcher takes. */
export type BatchableCall = PendingCall & { readonly entryParts: EntryParts };

/** True when `call` may travel in a batch. */
export function isBatchable(call: PendingCall): call is BatchableCall {
  return call.entryParts !== undefined;
}

/** A batch published and not yet fully answered: its calls, by correlation id. */
export interface SentBatch {
  readonly id: string;
  readonly queue: string;
  readonly callIds: readonly string[];
  /** Calls of the batch still pending; the batch is forgotten at 0. */
  unsettled: number;
}

/** Counters kept by the calling side; {@link RpcConnection.stats} returns a copy. */
export interface CallerStats {
  /** Calls made so far (including those refused before publishing). */
  calls: number;
  /** Calls that failed, by error code. */
  errors: Partial<Record<RpcErrorCode, number>>;
  /** Calls waiting for a reply right now. */
  pending: number;
  /**
   * Replies that matched no pending call (late after a timeout, duplicated, or foreign),
   * including replies whose AMQP properties could not be decoded (dropped unread).
   */
  unmatchedReplies: number;
  /** Times an idempotent call was published again after an UNAVAILABLE failure. */
  retries: number;
  /**
   * Batch messages published (several calls each, docs/protocol.md "Batches"): 0 with
   * `batch: false`, and while no queue called is known to read batches (D36).
   */
  batches: number;
}

/**
 * The calls waiting for replies, by correlation id, and the batches they went in. Every way
 * a call ends goes through {@link settle}, which deletes its entry.
 */
export class PendingCalls {
  readonly #calls = new IdTable<PendingCall>();
  /** Batches sent, by their correlation id: how replies, returns and failures find their calls. */
  readonly batches = new IdTable<SentBatch>();
  /** When each pending call times out. */
  readonly deadlines = new CallDeadlines();
  readonly #bodies: BodyPool;
  readonly #retry: RetryPolicy<PendingCall>;
  /** Calls made so far, counted by the caller. */
  made = 0;
  unmatchedReplies = 0;
  /** Batch messages published, counted by the Batcher. */
  batchesSent = 0;
  /**
   * Pending calls the library made itself (the describes behind default batching, D36):
   * not in the stats, their failures not counted, never cancelled on the server.
   */
  #internal = 0;
  /** Ids of the latest internal calls settled: their late answers are not "unmatched". */
  readonly #internalSettled = new Set<string>();
  readonly #errors: Partial<Record<RpcErrorCode, number>> = {};

  constructor(bodies: BodyPool, retry: RetryPolicy<PendingCall>) {
    this.#bodies = bodies;
    this.#retry = retry;
  }

  get size(): number {
    return this.#calls.size;
  }

  get(id: string): PendingCall | undefined {
    return this.#calls.get(id);
  }

  /** True while `call` is the pending call of its id (not settled, not superseded). */
  isPending(call: PendingCall): boolean {
    return this.#calls.get(call.id) === call;
  }

  add(call: PendingCall): void {
    this.#calls.set(call);
    if (call.multi?.internal === true) this.#internal++;
  }

  /** The calls pending now (a copy), in no particular order. */
  values(): PendingCall[] {
    return this.#calls.values();
  }

  get stats(): CallerStats {
    return {
      calls: this.made,
      errors: { ...this.#errors },
      pending: this.#calls.size - this.#internal,
      unmatchedReplies: this.unmatchedReplies,
      retries: this.#retry.retries,
      batches: this.batchesSent,
    };
  }

  /** Counts a failed call by its code. */
  failed(error: RpcError): RpcError {
    this.#errors[error.code] = (this.#errors[error.code] ?? 0) + 1;
    return error;
  }

  /**
   * Ends a pending call: an RpcError rejects it, anything else resolves it. An idempotent
   * call that failed to get through (not `answered` by its server) may be retried instead.
   */
  settle(id: string, outcome: unknown, answered = false): void {
    const call = this.#calls.get(id);
    if (call) this.settleCall(call, outcome, answered);
  }

  /** {@link settle} for a call just found pending (its reply's routing looked it up). */
  settleCall(call: PendingCall, outcome: unknown, answered = false): void {
    const id = call.id;
    const retry = call.retry;
    if (retry) {
      if (outcome instanceof RpcError) {
        if (!answered && this.#retry.retryLater(call, retry, outcome)) return;
        outcome = retry.finalError(outcome);
      }
      clearTimeout(retry.timer);
    }
    this.#calls.delete(id);
    const internal = call.multi?.internal === true;
    if (internal) this.#settledInternal(id);
    if (call.deadline) this.deadlines.cancel(call.deadline);
    // Nothing publishes the body once the call is over (a late publish checks isPending).
    if (call.pooled) this.#bodies.give(call.pooled);
    if (call.batch && --call.batch.unsettled === 0) this.batches.delete(call.batch.id);
    if (call.signal && call.onAbort) call.signal.removeEventListener('abort', call.onAbort);
    if (outcome instanceof RpcError) call.reject(internal ? outcome : this.failed(outcome));
    else call.resolve(outcome);
  }

  /**
   * True for the id of an internal call settled lately: a describe answer that came after
   * the library had enough of them is not the user's unmatched reply.
   */
  wasInternal(id: string): boolean {
    return this.#internalSettled.has(id);
  }

  #settledInternal(id: string): void {
    this.#internal--;
    this.#internalSettled.add(id);
    if (this.#internalSettled.size > MAX_INTERNAL_SETTLED) {
      for (const oldest of this.#internalSettled) {
        this.#internalSettled.delete(oldest);
        break;
      }
    }
  }

  /** Ends every pending call with `error`. */
  failAll(error: RpcError): void {
    for (const call of this.#calls.values()) this.settle(call.id, error);
  }
}

/** How many settled internal calls' ids are remembered (late describe answers). */
const MAX_INTERNAL_SETTLED = 64;
