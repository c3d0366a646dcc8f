/** Small helpers shared by the fault tests (test/faults/*.test.ts). */
import assert from 'node:assert/strict';
import {
  RpcError,
  type ConnectionState,
  type RpcConnection,
  type RpcErrorCode,
} from '../../src/index.js';

/** Asserts that `error` is an RpcError with `code`; returns it typed. */
export function assertCode(error: unknown, code: RpcErrorCode): RpcError {
  assert.ok(error instanceof RpcError, `expected an RpcError ${code}, got ${String(error)}`);
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  return error;
}

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

/**
 * Resolves once `check()` is true, polling every `everyMs` (for broker-side facts that
 * send no event, such as a queue's consumer count); rejects after `timeoutMs`.
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Fast reconnects for tests: the default starts at 100 ms and backs off to 10 s. */
export const FAST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 500 } as const;
