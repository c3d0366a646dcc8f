import { RpcError } from '../errors.js';
import type { AmqpProperties } from '../transport/types.js';

/** First wait before publishing an idempotent call again. */
export const RETRY_INITIAL_DELAY_MS = 50;
/** Longest wait between two attempts. */
export const RETRY_MAX_DELAY_MS = 1_000;

/**
 * The retry bookkeeping of one idempotent call (`CallOptions.idempotent`). The caller keeps
 * one per such call and asks it, each time the call fails with UNAVAILABLE, whether and
 * when to publish it again. The request keeps its correlation id (its `message_id`), so
 * servers can recognise the retry (docs/reliability.md, "Idempotent calls").
 */
export class RetryState {
  /** Attempts after the first; each new one voids a publish still waiting from the last. */
  attempts = 0;
  /** The timer of the next attempt, while one is scheduled. */
  timer: NodeJS.Timeout | undefined;
  /** The latest UNAVAILABLE: the cause of a final DEADLINE_EXCEEDED. */
  lastError: RpcError | undefined;

  /** @param deadline the call's deadline, epoch ms. */
  constructor(readonly deadline: number) {}

  /**
   * How long to wait before the next attempt: 50 ms doubling to 1 s, with equal jitter so
   * that callers cut off together do not come back in lockstep. `undefined` when that
   * attempt would start at or past the deadline: then the deadline ends the call.
   */
  nextDelayMs(now = Date.now(), random = Math.random()): number | undefined {
    const ceiling = Math.min(
      RETRY_MAX_DELAY_MS,
      RETRY_INITIAL_DELAY_MS * 2 ** Math.min(this.attempts, 20),
    );
    const delayMs = ceiling / 2 + random * (ceiling / 2);
    return now + delayMs < this.deadline ? delayMs : undefined;
  }

  /** Milliseconds left before the deadline (at least 1): a retried request's `expiration`. */
  remainingMs(now = Date.now()): number {
    return Math.max(1, Math.ceil(this.deadline - now));
  }

  /** The error the call ends with: a DEADLINE_EXCEEDED says which UNAVAILABLE it kept retrying. */
  finalError(error: RpcError): RpcError {
    const last = this.lastError;
    if (error.code !== 'DEADLINE_EXCEEDED' || last === undefined || error.cause !== undefined) {
      return error;
    }
    return new RpcError(
      'DEADLINE_EXCEEDED',
      `${error.message} (retried ${this.attempts} times; last: ${last.message})`,
      { cause: last },
    );
  }
}

/**
 * True for the failures an idempotent call is retried on: the request or its reply did not
 * get through (no route, a nack, a lost channel or connection). A handler's own error
 * reply is an answer, never retried, whatever its code.
 */
export function isRetryable(error: RpcError): boolean {
  return error.code === 'UNAVAILABLE';
}

/** What {@link RetryPolicy} needs of a call: its retry state and its properties. */
export interface RetriedCall {
  readonly properties: AmqpProperties;
}

/** What {@link RetryPolicy} needs of the caller. */
export interface RetryHost<C extends RetriedCall> {
  /** True while `call` is still pending (not settled meanwhile). */
  isPending(call: C): boolean;
  /** Publishes `call` again once a channel is writable. */
  publishLater(call: C): void;
  /** True once nothing can get through any more (the caller or the connection closed). */
  readonly stopped: boolean;
}

/**
 * Schedules the attempts of idempotent calls: after a backoff ({@link RetryState.nextDelayMs}),
 * within the call's deadline, each with the time left as its `expiration`.
 */
export class RetryPolicy<C extends RetriedCall> {
  /** Times a call was published again. */
  retries = 0;
  readonly #host: RetryHost<C>;

  constructor(host: RetryHost<C>) {
    this.#host = host;
  }

  /**
   * Schedules the next attempt of a call that failed with `error`; false when the call
   * must end with it now. True also when no time is left for another attempt: the call
   * then ends at its deadline, with this as the cause.
   */
  retryLater(call: C, retry: RetryState, error: RpcError): boolean {
    if (!isRetryable(error) || this.#host.stopped) return false;
    retry.lastError = error;
    if (retry.timer !== undefined) return true; // an attempt is already scheduled
    const delayMs = retry.nextDelayMs();
    if (delayMs === undefined) return true;
    retry.attempts++;
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      if (!this.#host.isPending(call)) return;
      this.retries++;
      // The broker drops the request when the caller gives up, as for the first attempt.
      call.properties.expiration = String(retry.remainingMs());
      this.#host.publishLater(call);
    }, delayMs);
    return true;
  }
}
