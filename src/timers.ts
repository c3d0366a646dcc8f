/**
 * Timers for delays a peer or a user chooses. Node's `setTimeout` takes at most
 * 2^31 - 1 ms (about 24.8 days) and fires after 1 ms for anything longer (with a
 * TimeoutOverflowWarning): a request whose deadline is a month away would be aborted at
 * once. These chain timers of at most that length instead.
 */

/** The longest delay one Node timer takes (about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/** A timer from {@link setLongTimeout}; `clear()` stops it (idempotent). */
export interface LongTimeout {
  clear(): void;
}

/** Options of {@link setLongTimeout} and {@link setTimeoutAt}. */
export interface LongTimeoutOptions {
  /** Do not keep the process alive for it (`timer.unref()`). @default false */
  unref?: boolean;
}

/**
 * Calls `callback` once after `delayMs` (any non-negative number, `Infinity` for never),
 * however long. Delays within one Node timer cost one timer, as `setTimeout` does.
 */
export function setLongTimeout(
  callback: () => void,
  delayMs: number,
  options: LongTimeoutOptions = {},
): LongTimeout {
  return setTimeoutAt(callback, Date.now() + Math.max(0, delayMs), options);
}

/** Calls `callback` once at `dueAt` (epoch ms), however far ahead; at once if it is past. */
export function setTimeoutAt(
  callback: () => void,
  dueAt: number,
  options: LongTimeoutOptions = {},
): LongTimeout {
  let timer: NodeJS.Timeout | undefined;
  let cleared = false;
  const arm = (): void => {
    const left = dueAt - Date.now();
    // A due date past what a timer takes waits in steps, checking the clock after each.
    timer =
      left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(callback, Math.max(0, left));
    if (options.unref === true) timer.unref();
  };
  arm();
  return {
    clear(): void {
      if (cleared) return;
      cleared = true;
      clearTimeout(timer);
    },
  };
}
