import type { RpcErrorCode } from '../index.js';
import type { PhaseOutcome, PhaseTally } from './bench-load.js';
import { paint, type MaybeTerminal } from './output.js';

/** Why a run ended before its limit. */
export type StoppedBy = 'interrupted' | 'connection lost';

/** What `rabbit-rpc bench --json` prints: one object, the same figures as the table. */
export interface BenchResult {
  readonly queue: string;
  /** True when the echo server ran in this process (its CPU and memory are included). */
  readonly echo: boolean;
  readonly method?: string;
  readonly concurrency: number;
  /** Size of the request's JSON, in bytes. */
  readonly requestBytes: number;
  readonly warmup: {
    readonly ms: number;
    readonly calls: number;
    readonly failed: number;
    readonly errors: Partial<Record<RpcErrorCode, number>>;
  };
  /** Length of the measured phase. */
  readonly durationMs: number;
  /** Calls of the measured phase that ended (ok + failed). */
  readonly calls: number;
  readonly ok: number;
  readonly failed: number;
  /** Failed calls by error code; `{}` when none failed. */
  readonly errors: Partial<Record<RpcErrorCode, number>>;
  readonly callsPerSec: number;
  /** Latencies of the calls that succeeded; null when none did. */
  readonly latencyMs: {
    readonly p50: number | null;
    readonly p90: number | null;
    readonly p99: number | null;
    readonly p999: number | null;
    readonly max: number | null;
  };
  /** This process's CPU time (user + system) over the measured phase, per call. */
  readonly clientCpuUsPerCall: number | null;
  /** Resident set size at the end of the measured phase, MiB. */
  readonly clientRssMb: number;
  /** Peak resident set size of the process so far, MiB. */
  readonly clientPeakRssMb: number;
  /** False when the run was interrupted or lost its connection before its limit. */
  readonly complete: boolean;
  readonly stoppedBy?: StoppedBy;
}

/** What the run knows when it reports. */
export interface BenchFigures {
  readonly queue: string;
  readonly echo: boolean;
  readonly method: string | undefined;
  readonly concurrency: number;
  readonly requestBytes: number;
  readonly warmup: PhaseTally;
  readonly warmupMs: number;
  readonly measured: PhaseTally;
  readonly outcome: PhaseOutcome;
  readonly stoppedBy: StoppedBy | undefined;
}

const MIB = 1_048_576;

/** The figures as a {@link BenchResult}, with memory read now. */
export function benchResult(figures: BenchFigures): BenchResult {
  const { measured, outcome, warmup } = figures;
  const latency = measured.latency;
  const at = (p: number): number | null => orNull(round(latency.percentile(p), 3));
  const cpuUs = outcome.cpu.user + outcome.cpu.system;
  return {
    queue: figures.queue,
    echo: figures.echo,
    ...(figures.method === undefined ? {} : { method: figures.method }),
    concurrency: figures.concurrency,
    requestBytes: figures.requestBytes,
    warmup: {
      ms: round(figures.warmupMs, 1),
      calls: warmup.completed,
      failed: warmup.failed,
      errors: errorsObject(warmup.errors),
    },
    durationMs: round(outcome.elapsedMs, 1),
    calls: measured.completed,
    ok: measured.succeeded,
    failed: measured.failed,
    errors: errorsObject(measured.errors),
    callsPerSec:
      outcome.elapsedMs > 0 ? round((measured.completed * 1000) / outcome.elapsedMs, 1) : 0,
    latencyMs: {
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: orNull(round(latency.max, 3)),
    },
    clientCpuUsPerCall: measured.completed > 0 ? round(cpuUs / measured.completed, 1) : null,
    clientRssMb: round(process.memoryUsage.rss() / MIB, 1),
    // maxRSS is in KiB.
    clientPeakRssMb: round(process.resourceUsage().maxRSS / 1024, 1),
    complete: figures.stoppedBy === undefined,
    ...(figures.stoppedBy === undefined ? {} : { stoppedBy: figures.stoppedBy }),
  };
}

/** The result as the table `bench` prints on stdout. */
export function benchTable(result: BenchResult, out: MaybeTerminal = process.stdout): string {
  const rows: Array<[string, string]> = [];
  const queue = result.echo ? `${result.queue} (echo server in this process)` : result.queue;
  rows.push(['queue', result.method === undefined ? queue : `${queue}, method ${result.method}`]);
  rows.push(['in flight', count(result.concurrency)]);
  rows.push(['request', `${count(result.requestBytes)} bytes of JSON`]);
  const warmupErrors =
    result.warmup.failed === 0 ? '' : `, ${errorList(result.warmup.failed, result.warmup.errors)}`;
  rows.push([
    'warm-up',
    `${seconds(result.warmup.ms)}, ${plural(result.warmup.calls, 'call')}${warmupErrors}`,
  ]);
  rows.push(['duration', seconds(result.durationMs)]);
  if (result.stoppedBy !== undefined) {
    rows.push(['stopped', paint(`early: ${result.stoppedBy}`, ['bold', 'red'], out)]);
  }
  rows.push(['calls', count(result.calls)]);
  rows.push(['calls/s', count(Math.round(result.callsPerSec))]);
  rows.push([
    'errors',
    result.failed === 0
      ? paint('none', 'green', out)
      : paint(errorList(result.failed, result.errors), ['bold', 'red'], out),
  ]);
  const latency = result.latencyMs;
  const columns: Array<[string, number | null]> = [
    ['p50', latency.p50],
    ['p90', latency.p90],
    ['p99', latency.p99],
    ['p99.9', latency.p999],
    ['max', latency.max],
  ];
  const width = Math.max(8, ...columns.map(([, value]) => milliseconds(value).length + 1));
  rows.push(['latency ms', columns.map(([name]) => name.padStart(width)).join('')]);
  rows.push(['', columns.map(([, value]) => milliseconds(value).padStart(width)).join('')]);
  rows.push([
    'client CPU',
    result.clientCpuUsPerCall === null
      ? '-'
      : `${result.clientCpuUsPerCall.toFixed(1)} µs per call`,
  ]);
  rows.push([
    'client RSS',
    `${result.clientRssMb.toFixed(1)} MB, peak ${result.clientPeakRssMb.toFixed(1)} MB`,
  ]);
  const labelWidth = Math.max(...rows.map(([label]) => label.length)) + 2;
  return (
    rows
      .map(([label, value]) =>
        `${label === '' ? ''.padEnd(labelWidth) : paint(label.padEnd(labelWidth), 'dim', out)}${value}`.trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** `12: UNAVAILABLE 10, INVALID_ARGUMENT 2`, the most frequent code first. */
function errorList(failed: number, errors: Partial<Record<RpcErrorCode, number>>): string {
  const byCount = Object.entries(errors).sort(([, a], [, b]) => b - a);
  return `${count(failed)} failed: ${byCount.map(([code, n]) => `${code} ${count(n)}`).join(', ')}`;
}

function errorsObject(
  errors: ReadonlyMap<RpcErrorCode, number>,
): Partial<Record<RpcErrorCode, number>> {
  return Object.fromEntries(errors);
}

function plural(value: number, noun: string): string {
  return `${count(value)} ${noun}${value === 1 ? '' : 's'}`;
}

function count(value: number): string {
  return value.toLocaleString('en-US');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

/** Three significant digits or so: 0.412, 3.41, 34.1, 341. */
function milliseconds(value: number | null): string {
  if (value === null) return '-';
  if (value < 1) return value.toFixed(3);
  if (value < 10) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return value.toFixed(0);
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function orNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}
