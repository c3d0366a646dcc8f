/**
 * Shared by the benchmark orchestrator (bench/run.ts, bench/soak.ts) and the worker
 * processes (bench/worker.ts): parameters, messages between them, the workload and the
 * closed-loop driver.
 */
import { performance } from 'node:perf_hooks';

/** The implementations the benchmark knows. */
export const IMPLS = [
  'raw',
  'amqplib-tutorial',
  'rabbit-rpc',
  'rabbit-rpc-direct',
  'rabbit-rpc-batch',
  'rabbit-rpc-noconfirm',
  'raw-plain',
  'raw-acked',
  'raw-wire',
] as const;
export type ImplName = (typeof IMPLS)[number];
/** What `npm run bench` runs without --impls. */
export const DEFAULT_IMPLS: readonly ImplName[] = [
  'raw',
  'raw-wire',
  'amqplib-tutorial',
  'rabbit-rpc',
  'rabbit-rpc-direct',
];

export function isImpl(name: string): name is ImplName {
  return (IMPLS as readonly string[]).includes(name);
}

/** What a worker process is told to do (argv[2] of bench/worker.ts, as JSON). */
export interface WorkerParams {
  role: 'server' | 'client' | 'soak-server' | 'soak-client';
  impl: ImplName;
  url: string;
  queue: string;
  /** Calls in flight (closed loop). */
  conc: number;
  /** Measured calls. */
  n: number;
  /** Warm-up calls before the measured ones. */
  warmup: number;
  /**
   * Warm-up lasts at least this long: rounds of `warmup` calls are repeated until it has
   * (default 0: one round).
   */
  warmupS?: number;
  /** Approximate request size in bytes (0: just `{"i":n}`). */
  payload: number;
  prefetch: number;
  /** The client gives up (and reports missing replies) after this many seconds. */
  timeoutS: number;
  /** rabbit-rpc only: `frameMax` given to `connect()` (default: the library's). */
  frameMax?: number;
  /** Soak only: every `dropEvery`-th call is left unanswered until its deadline. */
  dropEvery?: number;
  /** Soak only: timeout of the calls the server leaves unanswered. */
  dropTimeoutMs?: number;
  /** Soak only: heap samples are taken every this many completed calls. */
  sampleEvery?: number;
}

/** What the client measures over the measured calls. */
export interface ClientResult {
  ok: number;
  errors: number;
  /** Replies whose `i` or `ok` was wrong. */
  mismatches: number;
  /** Calls that got no answer at all before the client gave up. */
  missing: number;
  /** Replies the client could not match to a call (wrong correlation id, late, duplicate). */
  unknownReplies: number;
  firstError?: string;
  wallMs: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Client CPU time (user + system, all threads) during the measured calls. */
  cpuMs: number;
  /** Peak resident set size of the client process over its whole life, MB. */
  maxRssMb: number;
  /** Heap used at the end of the measured calls, MB. */
  heapUsedMb: number;
}

/** One heap sample of the soak client. */
export interface HeapSample {
  done: number;
  ok: number;
  timedOut: number;
  errors: number;
  pending: number;
  heapUsedMb: number;
  /** Memory of ArrayBuffers and Buffers (outside the V8 heap), MB. */
  arrayBuffersMb: number;
  rssMb: number;
  elapsedS: number;
}

export interface SoakResult {
  calls: number;
  ok: number;
  timedOut: number;
  otherErrors: number;
  mismatches: number;
  firstError?: string;
  wallS: number;
  unmatchedReplies: number;
  pendingAtEnd: number;
  samples: HeapSample[];
  maxRssMb: number;
}

/** Messages a worker sends to its parent over the IPC channel. */
export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'mark'; what: 'start' | 'end' }
  | { type: 'result'; result: ClientResult }
  | { type: 'heap'; sample: HeapSample }
  | { type: 'soak-result'; result: SoakResult }
  | { type: 'server-stats'; handled: number; dropped: number; heapUsedMb: number }
  | { type: 'failed'; message: string };

/** Requests are `{"i": n}` or, with a payload, `{"i": n, "pad": "xxx..."}` of about that size. */
export interface BenchRequest {
  i: number;
  pad?: string;
}

export interface BenchReply {
  i: number;
  ok: true;
}

/** Returns i → request object; the pad string is built once. */
export function requestMaker(payload: number): (i: number) => BenchRequest {
  if (payload <= 0) return (i) => ({ i });
  const overhead = JSON.stringify({ i: 1_000_000_000, pad: '' }).length;
  const pad = 'x'.repeat(Math.max(0, payload - overhead));
  return (i) => ({ i, pad });
}

/** The "application" every server runs: the same work for every implementation. */
export function handle(request: unknown): BenchReply {
  const i = (request as { i?: unknown } | null)?.i;
  if (typeof i !== 'number') throw new Error('request without a numeric "i"');
  return { i, ok: true };
}

/** True when `reply` is the right answer to the request with index `i`. */
export function isReplyTo(reply: unknown, i: number): boolean {
  if (typeof reply !== 'object' || reply === null) return false;
  const r = reply as { i?: unknown; ok?: unknown };
  return r.i === i && r.ok === true;
}

/** Warm-up requests use indexes from here on, so they never look like measured ones. */
export const WARMUP_BASE = 1_000_000_000;

/** Nearest-rank percentile of an ascending array; the same code as `rabbit-rpc bench`'s. */
export { percentile } from '../../src/cli/latency.js';

export function median(values: readonly number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 === 1
    ? (finite[mid] ?? NaN)
    : ((finite[mid - 1] ?? 0) + (finite[mid] ?? 0)) / 2;
}

export const round = (value: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};

export const mb = (bytes: number): number => round(bytes / 1_048_576, 1);

/** Counts kept while a phase of calls runs. */
export interface PhaseCounts {
  ok: number;
  errors: number;
  mismatches: number;
  firstError: string | undefined;
}

/**
 * Closed loop for promise-style clients: `conc` workers, each issuing its next call when
 * the previous one settles, until `n` calls are done. Latency of call k goes to `lat[k]`.
 */
export async function closedLoop(
  call: (request: BenchRequest) => Promise<unknown>,
  make: (i: number) => BenchRequest,
  n: number,
  conc: number,
  base: number,
  lat: Float64Array | undefined,
  counts: PhaseCounts,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const k = next++;
      const started = performance.now();
      try {
        const reply = await call(make(base + k));
        if (isReplyTo(reply, base + k)) {
          counts.ok++;
          if (lat) lat[k] = performance.now() - started;
        } else {
          counts.mismatches++;
        }
      } catch (error) {
        counts.errors++;
        counts.firstError ??=
          error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, n) }, worker));
}

export function newCounts(): PhaseCounts {
  return { ok: 0, errors: 0, mismatches: 0, firstError: undefined };
}

/** What every client implementation offers the measuring code in bench/worker.ts. */
export interface BenchClient {
  /** Runs `n` calls with `conc` in flight, request indexes from `base`, filling `counts`. */
  runPhase(
    n: number,
    base: number,
    lat: Float64Array | undefined,
    counts: PhaseCounts,
  ): Promise<void>;
  /** Replies that matched no call so far. */
  unknownReplies(): number;
  close(): Promise<void>;
}

/** A running server; `close()` stops it. */
export interface BenchServer {
  close(): Promise<void>;
}

/** Parses `--key value`, `--key=value` and bare `--flag` arguments. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k] ?? '';
    if (!arg.startsWith('--')) throw new Error(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    if (eq !== -1) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1));
      continue;
    }
    const value = argv[k + 1];
    if (value !== undefined && !value.startsWith('--')) {
      flags.set(arg.slice(2), value);
      k++;
    } else {
      flags.set(arg.slice(2), 'true');
    }
  }
  return flags;
}

export function intFlag(flags: Map<string, string>, name: string, fallback: number): number {
  const raw = flags.get(name) ?? process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`--${name} must be a non-negative integer; got "${raw}"`);
  return value;
}

export const DEFAULT_URL = process.env['AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';
