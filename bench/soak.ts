/**
 * Heap-flatness soak: `npm run bench -- --soak` or `node --import tsx bench/soak.ts`.
 * One rabbit-rpc client process keeps 10,000 calls in flight until 1,000,000 calls are
 * done; every 10th call has a 200 ms timeout and the server answers it only after that
 * deadline, so 10% end in DEADLINE_EXCEEDED (late replies are dropped by the client). The
 * client reports its heap (after a full GC) at intervals; a flat heap means timed-out and
 * answered calls leave nothing behind. Prints the samples and writes
 * bench/results/soak-<timestamp>.json. No assertions: it reports what it sees.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DEFAULT_URL,
  intFlag,
  parseFlags,
  round,
  type SoakResult,
  type WorkerParams,
} from './lib/common.js';
import {
  RESULTS_DIR,
  Worker,
  bundleWorker,
  deleteQueues,
  guardChildren,
  killAllChildren,
  rpcSource,
} from './lib/system.js';

const HELP = `npm run bench -- --soak [flags]     (or: node --import tsx bench/soak.ts [flags])

  --n N                calls in total (default 1000000; --quick: 100000)
  --quick              100,000 calls (about 20 s here)
  --conc N             calls in flight on the one client (default 10000)
  --drop-every N       every N-th call is left unanswered until its deadline (default 10)
  --drop-timeout-ms N  timeout of those calls (default 200)
  --prefetch N         server prefetch (default 100)
  --samples N          heap samples over the run (default 20)
  --frame-max N        frameMax given to connect() (default: the library's, 131072)
  --rpc-rev REV        measure src/ of a git revision (e.g. HEAD) instead of the working tree
  --rpc-src DIR        use the rabbit-rpc source in DIR instead of ./src
  --url URL            broker (default: AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --out FILE           JSON results file (default bench/results/soak-<timestamp>.json)`;

export async function runSoak(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(argv);
  if (flags.has('help')) {
    console.log(HELP);
    return;
  }
  const n = intFlag(flags, 'n', flags.has('quick') ? 100_000 : 1_000_000);
  const conc = intFlag(flags, 'conc', 10_000);
  const dropEvery = intFlag(flags, 'drop-every', 10);
  const dropTimeoutMs = intFlag(flags, 'drop-timeout-ms', 200);
  const prefetch = intFlag(flags, 'prefetch', 100);
  const frameMax = flags.has('frame-max') ? intFlag(flags, 'frame-max', 0) : undefined;
  const sampleEvery = Math.max(1, Math.floor(n / Math.max(1, intFlag(flags, 'samples', 20))));
  const url = flags.get('url') ?? DEFAULT_URL;
  const rpc = rpcSource(flags);
  process.on('exit', rpc.remove);
  const startedAt = new Date();
  const stamp = startedAt
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d{3}Z$/, 'Z');
  const out = flags.get('out') ?? join(RESULTS_DIR, `soak-${stamp}.json`);
  const queue = 'bench.rpc.soak';

  guardChildren(() =>
    deleteQueues(url, [queue]).then(
      () => undefined,
      () => undefined,
    ),
  );
  await deleteQueues(url, [queue]);
  const bundle = await bundleWorker(rpc.src);
  process.on('exit', bundle.remove);
  const params: WorkerParams = {
    role: 'soak-server',
    impl: 'rabbit-rpc',
    url,
    queue,
    conc,
    n,
    warmup: 0,
    payload: 0,
    prefetch,
    timeoutS: 0,
    dropEvery,
    dropTimeoutMs,
    sampleEvery,
  };
  if (frameMax !== undefined) params.frameMax = frameMax;
  console.log(
    `soak: ${n.toLocaleString('en-US')} calls, ${conc.toLocaleString('en-US')} in flight on one client, ` +
      `every ${dropEvery}th call unanswered until its ${dropTimeoutMs} ms timeout; server prefetch ${prefetch}; rabbit-rpc: ${rpc.label}\n`,
  );
  const server = new Worker(bundle.path, params);
  let client: Worker | undefined;
  let serverStats: { handled: number; dropped: number; heapUsedMb: number } | undefined;
  server.onMessage = (message) => {
    if (message.type === 'server-stats') serverStats = message;
  };
  let result: SoakResult | undefined;
  try {
    await server.expect('ready');
    client = new Worker(bundle.path, { ...params, role: 'soak-client' }, ['--expose-gc']);
    console.log(
      '      calls done | ok        | timed out | errors | pending | heap used MB | ArrayBuffers MB | RSS MB | s',
    );
    for (;;) {
      const message = await client.next();
      if (!message) throw new Error(`the soak client exited early: ${client.stderr.trim()}`);
      if (message.type === 'failed') throw new Error(`the soak client failed: ${message.message}`);
      if (message.type === 'heap') {
        const s = message.sample;
        console.log(
          `${s.done.toLocaleString('en-US').padStart(16)} | ${String(s.ok).padEnd(9)} | ${String(s.timedOut).padEnd(9)} | ` +
            `${String(s.errors).padEnd(6)} | ${String(s.pending).padEnd(7)} | ${String(s.heapUsedMb).padEnd(12)} | ${String(s.arrayBuffersMb).padEnd(15)} | ${String(s.rssMb).padEnd(6)} | ${s.elapsedS}`,
        );
      }
      if (message.type === 'soak-result') {
        result = message.result;
        break;
      }
    }
    await client.exited;
  } finally {
    await client?.stop();
    await server.stop();
    await deleteQueues(url, [queue]).catch(() => undefined);
  }

  const samples = result.samples;
  // The steady part: from 20% of the calls (past the start-up burst) until the last `conc`
  // calls, where the number in flight starts to drain.
  const steady = samples.filter((s) => s.done >= n / 5 && s.done <= n - conc);
  const heaps = steady.map((s) => s.heapUsedMb);
  const first = steady[0];
  const last = steady[steady.length - 1];
  const summary = {
    calls: result.calls,
    ok: result.ok,
    timedOut: result.timedOut,
    expectedTimeouts: Math.floor(n / dropEvery),
    otherErrors: result.otherErrors,
    wrongReplies: result.mismatches,
    firstError: result.firstError,
    callsPerSec: round(result.calls / result.wallS, 0),
    unmatchedLateReplies: result.unmatchedReplies,
    pendingAtEnd: result.pendingAtEnd,
    steadyFrom: first?.done,
    steadyTo: last?.done,
    heapSteadyFirstMb: first?.heapUsedMb,
    heapSteadyLastMb: last?.heapUsedMb,
    heapAtEndMb: samples[samples.length - 1]?.heapUsedMb,
    heapMinMb: Math.min(...heaps),
    heapMaxMb: Math.max(...heaps),
    clientPeakRssMb: result.maxRssMb,
    server: serverStats,
  };
  console.log(
    `\n${result.calls.toLocaleString('en-US')} calls in ${result.wallS} s (${summary.callsPerSec.toLocaleString('en-US')} calls/s): ` +
      `${result.ok.toLocaleString('en-US')} ok, ${result.timedOut.toLocaleString('en-US')} DEADLINE_EXCEEDED ` +
      `(expected ${summary.expectedTimeouts.toLocaleString('en-US')}), ${result.otherErrors} other errors, ${result.mismatches} wrong replies` +
      (result.firstError ? ` (first: ${result.firstError})` : ''),
  );
  console.log(
    `heap used after a full GC, steady part (${String(first?.done)} to ${String(last?.done)} calls done): ` +
      `${String(first?.heapUsedMb)} → ${String(last?.heapUsedMb)} MB (min ${summary.heapMinMb}, max ${summary.heapMaxMb}); ` +
      `after the last call: ${String(summary.heapAtEndMb)} MB; client peak RSS ${result.maxRssMb} MB; ` +
      `pending at the end ${result.pendingAtEnd}; late replies dropped ${result.unmatchedReplies}`,
  );
  if (serverStats) {
    console.log(
      `server: ${serverStats.handled.toLocaleString('en-US')} requests reached the handler, ${serverStats.dropped.toLocaleString('en-US')} of them held until their deadline; ` +
        `the rest of the timed-out calls expired in the queue (per-message TTL) or were dropped unstarted`,
    );
  }
  mkdirSync(resolve(out, '..'), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ startedAt: startedAt.toISOString(), command: `npm run bench -- --soak ${argv.join(' ')}`.trim(), settings: { n, conc, dropEvery, dropTimeoutMs, prefetch, sampleEvery, frameMax, rabbitRpc: rpc.label }, summary, samples }, null, 2)}\n`,
  );
  console.log(`\nResults: ${out}`);
  if (result.otherErrors + result.mismatches > 0) process.exitCode = 1;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(resolve(entry)).href) {
  runSoak(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    killAllChildren('SIGKILL');
    process.exit(1);
  });
}
