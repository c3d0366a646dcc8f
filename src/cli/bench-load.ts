import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { RpcError, type RpcErrorCode } from '../index.js';
import { LatencyHistogram } from './latency.js';

/** When a phase stops issuing calls: after a number of calls, or after a time. */
export type PhaseLimit = { readonly calls: number } | { readonly durationMs: number };

/** What a phase of calls did so far; read live by the progress line. */
export class PhaseTally {
  /** Calls issued (some may still be in flight). */
  issued = 0;
  succeeded = 0;
  failed = 0;
  /** Failures by error code. */
  readonly errors = new Map<RpcErrorCode, number>();
  /** The first error of each code, for its message. */
  readonly examples = new Map<RpcErrorCode, RpcError>();
  /** Latencies of the calls that succeeded. */
  readonly latency = new LatencyHistogram();

  get completed(): number {
    return this.succeeded + this.failed;
  }

  recordSuccess(ms: number): void {
    this.succeeded++;
    this.latency.record(ms);
  }

  recordFailure(error: RpcError): void {
    this.failed++;
    this.errors.set(error.code, (this.errors.get(error.code) ?? 0) + 1);
    if (!this.examples.has(error.code)) this.examples.set(error.code, error);
  }
}

/** How a phase went, besides its tally. */
export interface PhaseOutcome {
  /** From the first call issued to the last one settled (or to the stop). */
  readonly elapsedMs: number;
  /** This process's CPU time over the same span (user and system, µs). */
  readonly cpu: NodeJS.CpuUsage;
  /** False when `stop` aborted it: calls still in flight were not counted. */
  readonly complete: boolean;
}

/**
 * A closed loop: `concurrency` workers, each issuing its next call as soon as its last one
 * settles, until `limit` is reached; then it waits for the calls in flight. When `stop`
 * aborts, it returns at once and the calls still in flight are not counted.
 */
export async function runPhase(
  call: () => Promise<unknown>,
  concurrency: number,
  limit: PhaseLimit,
  tally: PhaseTally,
  stop: AbortSignal,
): Promise<PhaseOutcome> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const endAt = 'durationMs' in limit ? started + limit.durationMs : Infinity;
  const maxCalls = 'calls' in limit ? limit.calls : Infinity;
  const more = (): boolean => !stop.aborted && tally.issued < maxCalls && performance.now() < endAt;

  const worker = async (): Promise<void> => {
    while (more()) {
      tally.issued++;
      const callStarted = performance.now();
      try {
        await call();
        if (stop.aborted) return;
        tally.recordSuccess(performance.now() - callStarted);
      } catch (thrown) {
        if (stop.aborted) return;
        tally.recordFailure(RpcError.from(thrown, 'UNKNOWN'));
        // A call that fails without any I/O (a refused publish, a closed connection) would
        // let this loop spin in microtasks and starve timers, signals and the socket.
        await nextTurn();
      }
    }
  };

  const workers = Array.from({ length: Math.min(concurrency, maxCalls) }, worker);
  let onStop: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => {
    onStop = resolve;
    if (stop.aborted) resolve();
    else stop.addEventListener('abort', onStop, { once: true });
  });
  try {
    await Promise.race([Promise.all(workers), stopped]);
  } finally {
    if (onStop) stop.removeEventListener('abort', onStop);
  }
  return {
    elapsedMs: performance.now() - started,
    cpu: process.cpuUsage(cpuBefore),
    complete: !stop.aborted,
  };
}
