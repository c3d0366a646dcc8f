/**
 * One benchmark process: a server or a client of one implementation. Started by
 * bench/run.ts (or bench/soak.ts) with its parameters as JSON in argv[2]; reports over the
 * IPC channel (`ready`, `mark start/end` around the measured calls, `result`).
 * Not meant to be run by hand.
 */
import { performance } from 'node:perf_hooks';
import {
  WARMUP_BASE,
  mb,
  newCounts,
  percentile,
  round,
  type BenchClient,
  type BenchServer,
  type ClientResult,
  type PhaseCounts,
  type WorkerMessage,
  type WorkerParams,
} from './lib/common.js';
import * as amqplibTutorial from './impls/amqplib-tutorial.js';
import * as raw from './impls/raw.js';
import * as rabbitRpc from './impls/rabbit-rpc.js';
import { runSoakClient, runSoakServer } from './impls/soak.js';

interface ImplModule {
  startServer(p: WorkerParams): Promise<BenchServer>;
  openClient(p: WorkerParams): Promise<BenchClient>;
}

const MODULES: Record<WorkerParams['impl'], ImplModule> = {
  raw,
  'raw-plain': raw,
  'raw-acked': raw,
  'raw-wire': raw,
  'amqplib-tutorial': amqplibTutorial,
  'rabbit-rpc': rabbitRpc,
  'rabbit-rpc-direct': rabbitRpc,
  'rabbit-rpc-batch': rabbitRpc,
  'rabbit-rpc-noconfirm': rabbitRpc,
};

/** Sends a message to the parent and resolves once it is written. */
export function report(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      process.stdout.write(`${JSON.stringify(message)}\n`);
      resolve();
      return;
    }
    process.send(message, undefined, undefined, () => resolve());
  });
}

/** Runs `close` (at most 2 s), then exits; used on SIGTERM and when the parent goes away. */
function exitAfter(close: () => Promise<void>, code: number): void {
  const timer = setTimeout(() => process.exit(code), 2000);
  close().then(
    () => process.exit(code),
    () => process.exit(code),
  );
  timer.unref();
}

function stopOnSignal(close: () => Promise<void>): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    exitAfter(close, 0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop); // the parent died or let go of us
}

function summarize(
  p: WorkerParams,
  counts: PhaseCounts,
  lat: Float64Array,
  wallMs: number,
  cpu: NodeJS.CpuUsage,
  unknownReplies: number,
): ClientResult {
  const got = lat.filter((x) => x > 0).sort();
  const result: ClientResult = {
    ok: counts.ok,
    errors: counts.errors,
    mismatches: counts.mismatches,
    missing: p.n - counts.ok - counts.errors - counts.mismatches,
    unknownReplies,
    wallMs: round(wallMs, 1),
    callsPerSec: round((counts.ok / wallMs) * 1000, 1),
    p50Ms: round(percentile(got, 50), 3),
    p99Ms: round(percentile(got, 99), 3),
    p999Ms: round(percentile(got, 99.9), 3),
    maxMs: round(got[got.length - 1] ?? NaN, 3),
    cpuMs: round((cpu.user + cpu.system) / 1000, 1),
    maxRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
    heapUsedMb: mb(process.memoryUsage().heapUsed),
  };
  if (counts.firstError !== undefined) result.firstError = counts.firstError;
  return result;
}

async function runClient(p: WorkerParams, impl: ImplModule): Promise<void> {
  const client = await impl.openClient(p);
  const warm = newCounts();
  // Until V8 has compiled the hot paths: code that runs once per batch gets hot up to 64
  // times later than code that runs once per call (docs/benchmark.md, "Method").
  const warmUntil = performance.now() + (p.warmupS ?? 0) * 1000;
  let warmBase = WARMUP_BASE;
  do {
    await client.runPhase(p.warmup, warmBase, undefined, warm);
    warmBase += p.warmup;
  } while (performance.now() < warmUntil);
  const counts = newCounts();
  const lat = new Float64Array(p.n);
  await report({ type: 'mark', what: 'start' });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const state = { timedOut: false };
  let watchdog: NodeJS.Timeout | undefined;
  const giveUp = new Promise<void>((resolve) => {
    watchdog = setTimeout(() => {
      state.timedOut = true;
      resolve();
    }, p.timeoutS * 1000);
  });
  await Promise.race([client.runPhase(p.n, 0, lat, counts), giveUp]);
  clearTimeout(watchdog);
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await report({ type: 'mark', what: 'end' });
  // Warm-up failures count too: every reply is checked.
  counts.errors += warm.errors;
  counts.mismatches += warm.mismatches;
  counts.firstError ??= warm.firstError;
  if (state.timedOut) counts.firstError ??= `gave up after ${p.timeoutS} s`;
  const result = summarize(p, counts, lat, wallMs, cpu, client.unknownReplies());
  await report({ type: 'result', result });
  exitAfter(() => client.close(), state.timedOut ? 2 : 0);
}

async function main(): Promise<void> {
  const p = JSON.parse(process.argv[2] ?? '') as WorkerParams;
  const impl = MODULES[p.impl];
  switch (p.role) {
    case 'server': {
      const server = await impl.startServer(p);
      stopOnSignal(() => server.close());
      await report({ type: 'ready' });
      return;
    }
    case 'client':
      await runClient(p, impl);
      return;
    case 'soak-server': {
      const server = await runSoakServer(p, report);
      stopOnSignal(() => server.close());
      await report({ type: 'ready' });
      return;
    }
    case 'soak-client': {
      const close = await runSoakClient(p, report);
      exitAfter(close, 0);
      return;
    }
  }
}

main().catch(async (error: unknown) => {
  await report({
    type: 'failed',
    message: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exit(1);
});
