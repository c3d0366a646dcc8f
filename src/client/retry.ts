import { RpcError } from '../errors.js';

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
