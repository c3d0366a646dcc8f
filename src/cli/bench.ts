import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connect, RpcError, type CallOptions, type RpcConnection } from '../index.js';
import type { BenchArgs } from './args.js';
import { PhaseTally, runPhase, type PhaseLimit, type PhaseOutcome } from './bench-load.js';
import { benchResult, benchTable, type StoppedBy } from './bench-report.js';
import {
  brokerUrl,
  EXIT,
  exitCodeFor,
  formatJson,
  printRpcError,
  reportConnectError,
} from './output.js';
import { ProgressLine } from './progress.js';

/** Codes of a first call that mean nothing answers the queue: measuring would be pointless. */
const NOTHING_ANSWERS = new Set(['UNAVAILABLE', 'DEADLINE_EXCEEDED']);

/**
 * `rabbit-rpc bench`: a closed loop of calls against a queue, `concurrency` in flight. One
 * first call alone checks that something answers (and opens the reply queue), then a
 * warm-up, then the measured phase; prints a table (or `--json`) of throughput, errors by
 * code, latency percentiles and this process's CPU and memory. Returns the exit code: 0
 * when every call succeeded, 1 when some failed, 3/4 when nothing answers or the
 * connection is lost, 130 when interrupted.
 */
export async function runBench(args: BenchArgs): Promise<number> {
  const url = brokerUrl(args.url);
  const stop = new AbortController();
  let stoppedBy: StoppedBy | undefined;
  /** How the connection ended, when its loss stopped the run. */
  let lost: Promise<RpcError | undefined> | undefined;
  const onSignal = (): void => {
    stoppedBy ??= 'interrupted';
    stop.abort();
  };
  const unwatch: Array<() => void> = [];
  const watchLoss = (rpc: RpcConnection): void => {
    // The state changes before the calls in flight see their rejections: they are not
    // counted, as for an interruption. `closed` then tells why.
    const unsubscribe = rpc.onStateChange((state) => {
      if (state !== 'closed' || stop.signal.aborted) return;
      stoppedBy = 'connection lost';
      lost = rpc.closed;
      stop.abort();
    });
    unwatch.push(unsubscribe);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let rpc: RpcConnection | undefined;
  let echoRpc: RpcConnection | undefined;
  let progress: ProgressLine | undefined;
  try {
    // A benchmark that reconnects would measure the reconnection: a loss ends the run.
    const connectOptions = { url, signal: stop.signal, reconnect: false as const };
    try {
      rpc = await connect({ ...connectOptions, connectionName: 'rabbit-rpc bench' });
      if (args.echo) {
        echoRpc = await connect({ ...connectOptions, connectionName: 'rabbit-rpc bench echo' });
      }
    } catch (error) {
      if (stoppedBy === 'interrupted') return EXIT.INTERRUPTED;
      return reportConnectError(error, url);
    }
    watchLoss(rpc);
    let queue = args.queue ?? '';
    if (echoRpc !== undefined) {
      watchLoss(echoRpc);
      queue = `rabbit-rpc.bench.${randomBytes(4).toString('hex')}`;
      // prefetch as large as the load, so that the echo server never holds calls back.
      const prefetch = Math.min(65_535, Math.max(10, args.concurrency));
      await echoRpc.serve(queue, (request: unknown) => request, { autoDelete: true, prefetch });
    }

    const client = rpc;
    const options: CallOptions = {};
    if (args.timeoutMs !== undefined) options.timeoutMs = args.timeoutMs;
    if (args.method !== undefined) options.method = args.method;
    const { method, request } = args;
    const call = () => client.call(queue, request, options);

    const warmup = new PhaseTally();
    const measured = new PhaseTally();
    let measuringSince: number | undefined = undefined;
    progress = new ProgressLine(process.stderr, () =>
      measuringSince === undefined
        ? `warming up: ${warmup.completed.toLocaleString('en-US')} calls`
        : progressText(measured, args.limit, performance.now() - measuringSince),
    );
    progress.start();

    const warmupStarted = performance.now();
    await runPhase(call, 1, { calls: 1 }, warmup, stop.signal);
    const [firstError] = warmup.examples.values();
    if (!stop.signal.aborted && firstError !== undefined && NOTHING_ANSWERS.has(firstError.code)) {
      progress.stop();
      printRpcError(firstError);
      process.stderr.write(`the first call to "${queue}" failed: nothing was measured\n`);
      return exitCodeFor(firstError);
    }
    if (args.warmupMs > 0 && !stop.signal.aborted) {
      await runPhase(call, args.concurrency, { durationMs: args.warmupMs }, warmup, stop.signal);
    }
    const warmupMs = performance.now() - warmupStarted;
    if (stop.signal.aborted) {
      progress.stop();
      return stopExitCode(await lost, 'during the warm-up: nothing was measured');
    }

    measuringSince = performance.now();
    const outcome: PhaseOutcome = await runPhase(
      call,
      args.concurrency,
      args.limit,
      measured,
      stop.signal,
    );
    progress.stop();

    const result = benchResult({
      queue,
      echo: args.echo,
      method,
      concurrency: args.concurrency,
      requestBytes: Buffer.byteLength(JSON.stringify(request)),
      warmup,
      warmupMs,
      measured,
      outcome,
      stoppedBy,
    });
    process.stdout.write(args.json ? formatJson(result) + '\n' : benchTable(result));
    // One message per error code, so that the reason for the counts is on record too (the
    // warm-up's come first in time, so they win).
    for (const [code, error] of new Map([...measured.examples, ...warmup.examples])) {
      const times = (warmup.errors.get(code) ?? 0) + (measured.errors.get(code) ?? 0);
      printRpcError(
        new RpcError(code, `${error.message} (the first of ${times.toLocaleString('en-US')})`, {
          details: error.details,
        }),
      );
    }
    if (!outcome.complete) return stopExitCode(await lost, undefined);
    return warmup.failed + measured.failed === 0 ? EXIT.OK : EXIT.ERROR;
  } catch (thrown) {
    progress?.stop();
    const error = RpcError.from(thrown, 'UNKNOWN');
    printRpcError(error);
    return exitCodeFor(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const unsubscribe of unwatch) unsubscribe();
    // The client first: closing it ends the calls still in flight, then the server has none.
    await rpc?.close();
    await echoRpc?.close();
  }
}

/** The exit code of a run that stopped early, with its reason on stderr. */
function stopExitCode(lostWith: RpcError | undefined, note: string | undefined): number {
  if (lostWith === undefined) {
    // Interrupted (a connection that ended without an error was closed by this process).
    process.stderr.write(`interrupted${note === undefined ? '' : ` ${note}`}\n`);
    return EXIT.INTERRUPTED;
  }
  printRpcError(lostWith);
  if (note !== undefined) process.stderr.write(`the connection was lost ${note}\n`);
  return exitCodeFor(lostWith);
}

/** The status line while measuring: progress towards the limit, rate, failures. */
function progressText(tally: PhaseTally, limit: PhaseLimit, elapsedMs: number): string {
  const calls = tally.completed.toLocaleString('en-US');
  const where =
    'calls' in limit
      ? `${calls} of ${limit.calls.toLocaleString('en-US')} calls`
      : `${(elapsedMs / 1000).toFixed(1)} of ${(limit.durationMs / 1000).toFixed(1)} s, ${calls} calls`;
  const rate = elapsedMs > 0 ? Math.round((tally.completed * 1000) / elapsedMs) : 0;
  return `${where}, ${rate.toLocaleString('en-US')} calls/s, ${tally.failed.toLocaleString('en-US')} failed`;
}
