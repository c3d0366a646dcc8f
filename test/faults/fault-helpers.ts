/** Small helpers shared by the fault tests (test/faults/*.test.ts). */
import type { ConnectionState, RpcConnection, RpcErrorCode } from '../../src/index.js';
import { assertCode } from '../helpers.js';

export { assertCode, eventually } from '../helpers.js';

/** For `assert.rejects`: passes when the rejection is an RpcError with `code`. */
export function rejectsWith(code: RpcErrorCode): (error: unknown) => true {
  return (error: unknown) => {
    assertCode(error, code);
    return true;
  };
}

/** How a promise settled, and when (Date.now()). */
export interface Settled<T> {
  value: T | undefined;
  error: unknown;
  at: number;
}

/** Never rejects: records the outcome and the time it happened. */
export function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ value, error: undefined, at: Date.now() }),
    (error: unknown) => ({ value: undefined, error, at: Date.now() }),
  );
}

/**
 * Resolves when `rpc.state` is `state` (at once if it is). Rejects after `timeoutMs` so
 * a broken recovery fails the test with a message instead of hanging it.
 */
export function waitForState(
  rpc: RpcConnection,
  state: ConnectionState,
  timeoutMs = 20_000,
): Promise<void> {
  if (rpc.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`state is still ${rpc.state} after ${timeoutMs} ms, not ${state}`));
    }, timeoutMs);
    const stop = rpc.onStateChange((now) => {
      if (now !== state) return;
      clearTimeout(timer);
      stop();
      resolve();
    });
  });
}

/** Records every state change of `rpc`, for asserting the sequence. */
export function recordStates(rpc: RpcConnection): ConnectionState[] {
  const states: ConnectionState[] = [];
  rpc.onStateChange((state) => states.push(state));
  return states;
}

/** Fast reconnects for tests: the default starts at 100 ms and backs off to 10 s. */
export const FAST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 500 } as const;
