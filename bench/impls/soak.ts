/**
 * The heap-flatness soak (bench/soak.ts): one rabbit-rpc client keeps `conc` calls in
 * flight for `n` calls; every `dropEvery`-th call has a short timeout and the server leaves
 * it unanswered until that deadline has passed (or the broker drops it first, as its
 * per-message TTL runs out), so it ends in DEADLINE_EXCEEDED and any reply comes late.
 * The client samples its heap (after a full GC when run with --expose-gc) as it goes.
 */
import { performance } from 'node:perf_hooks';
import { connect, RpcError } from '../../src/index.js';
import { connectOptions } from './rabbit-rpc.js';
import {
  handle,
  isReplyTo,
  mb,
  round,
  type BenchServer,
  type HeapSample,
  type SoakResult,
  type WorkerMessage,
  type WorkerParams,
} from '../lib/common.js';

type Report = (message: WorkerMessage) => Promise<void>;

interface SoakRequest {
  i: number;
  drop?: true;
}

function heap(): { heapUsedMb: number; arrayBuffersMb: number; rssMb: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const usage = process.memoryUsage();
  return {
    heapUsedMb: mb(usage.heapUsed),
    arrayBuffersMb: mb(usage.arrayBuffers),
    rssMb: mb(usage.rss),
  };
}

export async function runSoakServer(p: WorkerParams, report: Report): Promise<BenchServer> {
  const rpc = await connect(connectOptions(p));
  let handled = 0;
  let dropped = 0;
  await rpc.serve(
    p.queue,
    async (request: SoakRequest, ctx) => {
      handled++;
      if (request.drop && ctx.deadline !== undefined) {
        // Leave the caller waiting: answer only once its deadline has passed.
        dropped++;
        const signal = ctx.signal;
        if (!signal.aborted) {
          await new Promise<void>((resolve) =>
            signal.addEventListener('abort', () => resolve(), { once: true }),
          );
        }
      }
      return handle(request);
    },
    { prefetch: p.prefetch },
  );
  const timer = setInterval(() => {
    void report({
      type: 'server-stats',
      handled,
      dropped,
      heapUsedMb: mb(process.memoryUsage().heapUsed),
    });
  }, 5000);
  timer.unref();
  return {
    close: async () => {
      clearInterval(timer);
      await report({
        type: 'server-stats',
        handled,
        dropped,
        heapUsedMb: mb(process.memoryUsage().heapUsed),
      });
      await rpc.close();
    },
  };
}

/** Runs the soak; resolves with a function that closes the client. */
export async function runSoakClient(p: WorkerParams, report: Report): Promise<() => Promise<void>> {
  const rpc = await connect(connectOptions(p));
  const dropEvery = p.dropEvery ?? 10;
  const dropTimeoutMs = p.dropTimeoutMs ?? 200;
  const sampleEvery = p.sampleEvery ?? Math.max(1, Math.floor(p.n / 20));
  const samples: HeapSample[] = [];
  let next = 0;
  let done = 0;
  let ok = 0;
  let timedOut = 0;
  let otherErrors = 0;
  let mismatches = 0;
  let firstError: string | undefined;
  const t0 = performance.now();

  const sample = (): void => {
    const s: HeapSample = {
      done,
      ok,
      timedOut,
      errors: otherErrors + mismatches,
      pending: rpc.stats().pending,
      ...heap(),
      elapsedS: round((performance.now() - t0) / 1000, 1),
    };
    samples.push(s);
    void report({ type: 'heap', sample: s });
  };

  const worker = async (): Promise<void> => {
    while (next < p.n) {
      const i = next++;
      const drop = i % dropEvery === dropEvery - 1;
      try {
        const reply = drop
          ? await rpc.call(p.queue, { i, drop: true }, { timeoutMs: dropTimeoutMs })
          : await rpc.call(p.queue, { i });
        // A dropped call is answered only after its deadline, so a reply to it is wrong too.
        if (!drop && isReplyTo(reply, i)) ok++;
        else mismatches++;
      } catch (error) {
        if (drop && error instanceof RpcError && error.code === 'DEADLINE_EXCEEDED') {
          timedOut++;
        } else {
          otherErrors++;
          firstError ??=
            error instanceof RpcError ? `${error.code}: ${error.message}` : String(error);
        }
      }
      done++;
      if (done % sampleEvery === 0) sample();
    }
  };

  sample();
  await Promise.all(Array.from({ length: Math.min(p.conc, p.n) }, worker));
  const wallS = round((performance.now() - t0) / 1000, 1);
  if (done % sampleEvery !== 0) sample();
  const stats = rpc.stats();
  const result: SoakResult = {
    calls: done,
    ok,
    timedOut,
    otherErrors,
    mismatches,
    wallS,
    unmatchedReplies: stats.unmatchedReplies,
    pendingAtEnd: stats.pending,
    samples,
    maxRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
  };
  if (firstError !== undefined) result.firstError = firstError;
  await report({ type: 'soak-result', result });
  return () => rpc.close();
}
