/**
 * `npm run bench`: rabbit-rpc against the raw broker round trip and amqplib's tutorial RPC.
 * For every repetition, case and implementation it starts a server process and a client
 * process, measures the client's closed loop, samples server and broker CPU, deletes the
 * queues, and finally prints medians and writes bench/results/<timestamp>.json.
 * docs/benchmark.md describes the method; `npm run bench -- --help` lists the flags.
 */
import { cpus, release } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_URL,
  DEFAULT_IMPLS,
  IMPLS,
  intFlag,
  isImpl,
  median,
  parseFlags,
  round,
  type ClientResult,
  type ImplName,
  type WorkerParams,
} from './lib/common.js';
import {
  medianRatios,
  ratios,
  renderComparison,
  type ComparisonRow,
  type Metrics,
} from './lib/compare.js';
import {
  RESULTS_DIR,
  Worker,
  bundleWorker,
  deleteQueues,
  findBrokerPid,
  guardChildren,
  killAllChildren,
  machineBusyMs,
  otherTree,
  processCpuMs,
  sleep,
  waitQuiet,
  workingTree,
} from './lib/system.js';

const HELP = `npm run bench -- [flags]

  --quick              1 repetition with fewer calls (under a minute)
  --reps N             repetitions (default 3; --quick: 1)
  --cases a,b          cases to run: seq, c16, c256, pl64k (default: all)
  --impls a,b          implementations: ${IMPLS.join(', ')}
                       (default: ${DEFAULT_IMPLS.join(', ')})
                       raw: no acks, confirms or properties; raw-plain: raw with one socket
                       write per publish; raw-acked: raw plus server acks; raw-wire:
                       raw-acked plus the rest of rabbit-rpc's wire format (docs/benchmark.md)
  --n N                measured calls per case (default: per case; warm-up is N/10)
  --prefetch N         server prefetch (default 100)
  --frame-max N        frameMax that rabbit-rpc connects with (default: the library's, 131072)
  --node-args "A B"    node options for every server and client process, e.g.
                       --node-args=--max-semi-space-size=2 (default: none)
  --warmup-s S         warm up for at least S seconds before each measured run: rounds of
                       the case's warm-up calls until S seconds have passed (default 3;
                       --quick: 0, one round)
  --retries N          reruns of a case disturbed by other CPU load (default 1)
  --quiet-wait S       wait up to S seconds for the machine to go quiet before a case (default 5; --quick: 2)
  --rpc-rev REV        also measure src/ of a git revision (e.g. main, HEAD~5), beside the
                       working tree: every selected rabbit-rpc* implementation runs a second
                       time as <impl>@<short commit>, in the same repetitions and cases, and
                       the summary adds the ratios working tree / REV (calls/s, client and
                       server CPU per call, p99, client peak RSS)
  --rpc-src DIR        the same with the rabbit-rpc source tree in DIR (its src/, with
                       index.ts) instead of a revision: <impl>@<DIR's name>
  --url URL            broker (default: AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --out FILE           JSON results file (default bench/results/<timestamp>.json)
  --soak               run the heap-flatness soak instead (see bench/soak.ts --help)

Flags can also be given as environment variables: BENCH_REPS=5, BENCH_N=5000, ...`;

interface CaseDef {
  name: string;
  title: string;
  conc: number;
  n: number;
  warmup: number;
  payload: number;
}

// Long enough (seconds per run on a quiet 2-core machine) for V8 to have optimised each
// implementation's hot path: with 3,000 sequential calls rabbit-rpc's client and server
// were still partly unoptimised and cost ~1.7x the CPU per call of a 15,000-call run.
const CASES: readonly CaseDef[] = [
  { name: 'seq', title: 'sequential (1 in flight)', conc: 1, n: 10_000, warmup: 2000, payload: 0 },
  { name: 'c16', title: '16 in flight', conc: 16, n: 50_000, warmup: 5000, payload: 0 },
  { name: 'c256', title: '256 in flight', conc: 256, n: 60_000, warmup: 6000, payload: 0 },
  {
    name: 'pl64k',
    title: '64 KiB requests, 16 in flight',
    conc: 16,
    n: 8000,
    warmup: 1000,
    payload: 65_536,
  },
];
const QUICK_N: Readonly<Record<string, number>> = { seq: 1000, c16: 5000, c256: 5000, pl64k: 1000 };

/** What runs as one implementation: a worker implementation bundled with one source tree. */
interface Variant {
  /** As printed and in the JSON: the implementation, with "@<tag>" for the other tree's. */
  name: string;
  impl: ImplName;
  /** '' for the working tree, else the other tree's tag (--rpc-rev, --rpc-src). */
  tree: string;
  /** The worker bundle (with that tree's rabbit-rpc). */
  bundle: string;
}

/** The implementations that run rabbit-rpc (and so the source tree): rabbit-rpc, rabbit-rpc-batch, ... */
const runsRpc = (impl: ImplName): boolean => impl.startsWith('rabbit-rpc');

/** One measured case of one implementation in one repetition. */
interface RunRecord {
  rep: number;
  case: string;
  /** The implementation as printed: with "@<tag>" when it ran the other source tree. */
  impl: string;
  /** The implementation the worker ran. */
  base: ImplName;
  /** '' for the working tree, else the other tree's tag. */
  tree: string;
  conc: number;
  n: number;
  warmup: number;
  payload: number;
  prefetch: number;
  attempt: number;
  disturbed: boolean;
  quietWaitS: number;
  client: ClientResult | undefined;
  failure?: string;
  serverCpuMs: number;
  brokerCpuMs: number;
  /** CPU used on the machine during the window by anything but client, server and broker. */
  otherCpuMs: number;
  clientUsPerCall: number;
  serverUsPerCall: number;
  brokerUsPerCall: number;
  /** calls/s divided by raw's calls/s in the same repetition and case. */
  ratioToRaw?: number;
  /** The ratio compares with a raw run, or is itself a run, that other load disturbed. */
  ratioDisturbed?: boolean;
  /** calls/s divided by raw-wire's calls/s in the same repetition and case. */
  ratioToWire?: number;
  /** As `ratioDisturbed`, for `ratioToWire`. */
  ratioToWireDisturbed?: boolean;
  /**
   * Working-tree runs, when another tree runs too: this run's metrics divided by those of
   * the other tree's run of the same implementation, repetition and case.
   */
  vsOther?: Metrics & { disturbed: boolean };
  at: string;
}

interface SummaryRow {
  case: string;
  impl: string;
  runs: number;
  /** Runs still disturbed by other load after their retries (left out of the medians). */
  disturbedRuns: number;
  calls: number;
  bad: number;
  callsPerSec: number;
  callsPerSecMin: number;
  callsPerSecMax: number;
  ratioToRaw: number;
  ratioToWire: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  clientUsPerCall: number;
  serverUsPerCall: number;
  brokerUsPerCall: number;
  clientMaxRssMb: number;
  otherCpuShare: number;
}

function listFlag<T extends string>(
  raw: string | undefined,
  all: readonly T[],
  what: string,
  fallback: readonly T[] = all,
): T[] {
  if (raw === undefined) return [...fallback];
  const picked = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const name of picked) {
    if (!(all as readonly string[]).includes(name))
      throw new Error(`unknown ${what} "${name}"; known: ${all.join(', ')}`);
  }
  return picked as T[];
}

const fmtInt = (v: number): string =>
  Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : '–';
const fmtMs = (v: number): string =>
  !Number.isFinite(v) ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
const fmtRatio = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '–');
const fmtPct = (v: number): string => (Number.isFinite(v) ? `${Math.round(v * 100)}%` : '–');

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flags = parseFlags(argv);
  if (flags.has('help')) {
    console.log(HELP);
    return;
  }
  if (flags.has('soak')) {
    const { runSoak } = await import('./soak.js');
    await runSoak(argv.filter((a) => a !== '--soak'));
    return;
  }
  const quick = flags.has('quick');
  const reps = intFlag(flags, 'reps', quick ? 1 : 3);
  const caseNames = listFlag(
    flags.get('cases'),
    CASES.map((c) => c.name),
    'case',
  );
  const impls = listFlag(flags.get('impls'), IMPLS, 'implementation', DEFAULT_IMPLS).filter(isImpl);
  const nOverride = intFlag(flags, 'n', 0);
  const prefetch = intFlag(flags, 'prefetch', 100);
  const frameMax = flags.has('frame-max') ? intFlag(flags, 'frame-max', 0) : undefined;
  const retries = intFlag(flags, 'retries', 1);
  // Node's own settings (heap sizes) change memory and CPU alike: the same for every worker.
  const nodeArgs = (flags.get('node-args') ?? '').split(/\s+/).filter(Boolean);
  const quietWaitS = intFlag(flags, 'quiet-wait', quick ? 2 : 5);
  const warmupS = intFlag(flags, 'warmup-s', quick ? 0 : 3);
  const url = flags.get('url') ?? DEFAULT_URL;
  const working = workingTree();
  const other = otherTree(flags);
  if (other) {
    process.on('exit', other.remove);
    if (!impls.some(runsRpc))
      throw new Error('--rpc-rev / --rpc-src need a rabbit-rpc implementation in --impls');
  }
  const startedAt = new Date();
  const stamp = startedAt
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d{3}Z$/, 'Z');
  const out = flags.get('out') ?? join(RESULTS_DIR, `${stamp}.json`);
  const cases = CASES.filter((c) => caseNames.includes(c.name)).map((c) => {
    const n = nOverride || (quick ? (QUICK_N[c.name] ?? c.n) : c.n);
    return { ...c, n, warmup: nOverride || quick ? Math.max(50, Math.round(n / 10)) : c.warmup };
  });

  const brokerPid = findBrokerPid(url);
  // Each tree's workers are a bundle of their own; the other tree's implementations (next to
  // the working tree's, so the two run one after the other) use their own queues too.
  const bundle = await bundleWorker(working.src, 'working-tree');
  process.on('exit', bundle.remove);
  const otherBundle = other ? await bundleWorker(other.src, `other-${other.tag}`) : undefined;
  if (otherBundle) process.on('exit', otherBundle.remove);
  // One group per implementation: itself, and its run of the other tree when there is one.
  const groups: Variant[][] = impls.map((impl) => {
    const mine = { name: impl, impl, tree: '', bundle: bundle.path };
    if (!other || !otherBundle || !runsRpc(impl)) return [mine];
    return [
      mine,
      { name: `${impl}@${other.tag}`, impl, tree: other.tag, bundle: otherBundle.path },
    ];
  });
  const variants = groups.flat();
  const names = variants.map((v) => v.name);
  implWidth = Math.max(implWidth, ...names.map((n) => n.length));
  const queues = (name: string): string[] => [`bench.rpc.${name}`, `bench.rpc.${name}.reply`];
  const cleanAll = async (): Promise<void> => {
    await deleteQueues(url, names.flatMap(queues)).catch(() => undefined);
  };
  guardChildren(cleanAll);
  const brokerVersion = await deleteQueues(url, names.flatMap(queues));

  const total = reps * cases.length * variants.length;
  console.log(
    `rabbit-rpc benchmark: ${reps} repetition(s) × ${cases.length} case(s) × ${variants.length} implementation(s) = ${total} runs`,
  );
  console.log(
    `broker RabbitMQ ${brokerVersion} (pid ${brokerPid ?? 'not found: no broker CPU'}), ${cpus().length} CPUs, node ${process.version}${nodeArgs.length > 0 ? ` ${nodeArgs.join(' ')}` : ''}`,
  );
  console.log(`rabbit-rpc: ${working.label} (bundled)`);
  if (other) console.log(`rabbit-rpc*@${other.tag}: ${other.label} (bundled)`);
  console.log(
    `cases: ${cases.map((c) => `${c.name} (c=${c.conc}, n=${c.n}+${c.warmup} warm-up${c.payload ? `, ${c.payload} B` : ''})`).join('; ')}; warm-up at least ${warmupS} s\n`,
  );

  const runs: RunRecord[] = [];
  const t0 = performance.now();
  let done = 0;
  for (let rep = 1; rep <= reps; rep++) {
    // Rotate the order every repetition, so no implementation always runs first or last.
    const order = runOrder(groups, rep);
    for (const c of cases) {
      const repRuns: RunRecord[] = [];
      for (const variant of order) {
        const impl = variant.name;
        let record: RunRecord | undefined;
        for (let attempt = 0; attempt <= retries; attempt++) {
          record = await runCase({
            rep,
            c,
            variant,
            url,
            prefetch,
            attempt,
            brokerPid,
            quietWaitS,
            warmupS,
            frameMax,
            nodeArgs,
          });
          if (!record.disturbed || attempt === retries) break;
          console.log(
            `  ${label(rep, reps, c.name, impl)} disturbed (other CPU ${fmtPct(otherShare(record))} of a core), running again`,
          );
          runs.push(record);
        }
        if (!record) continue;
        repRuns.push(record);
        runs.push(record);
        done++;
        setRatios(repRuns);
        const elapsed = (performance.now() - t0) / 1000;
        const eta = (elapsed / done) * (total - done);
        console.log(
          `${label(rep, reps, c.name, impl)} ${line(record)}  [${done}/${total}, ${Math.round(elapsed)} s, ~${Math.round(eta)} s left]`,
        );
      }
    }
  }

  const summary = summarize(runs, cases, names);
  const comparison = other ? compare(runs, cases, variants) : [];
  const finishedAt = new Date();
  console.log(`\nDone in ${Math.round((performance.now() - t0) / 1000)} s.\n`);
  console.log(renderTables(summary, cases, names, reps));
  if (other) console.log(`\n${renderComparison(comparison, other.label)}`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        command: `npm run bench -- ${argv.join(' ')}`.trim(),
        settings: {
          reps,
          cases,
          impls: names,
          prefetch,
          frameMax,
          nodeArgs,
          retries,
          quietWaitS,
          warmupS,
          rabbitRpc: working.label,
          ...(other ? { otherRabbitRpc: { tag: other.tag, source: other.label } } : {}),
        },
        machine: {
          cpus: cpus().length,
          cpuModel: cpus()[0]?.model,
          kernel: release(),
          node: process.version,
          broker: `RabbitMQ ${brokerVersion}`,
        },
        summary,
        ...(other ? { comparison } : {}),
        runs,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nResults: ${out}`);
  const bad = summary.reduce((sum, row) => sum + row.bad, 0);
  if (bad > 0) {
    console.log(
      `\n${bad} calls failed, got a wrong reply or none: see "failure"/"client" in the JSON.`,
    );
    process.exitCode = 1;
  }
}

/**
 * The order of one repetition: the implementations rotate by one every repetition, so none
 * always runs first or last; the two trees of an implementation stay next to each other
 * and take turns going first.
 */
function runOrder(groups: readonly (readonly Variant[])[], rep: number): Variant[] {
  const rotated = groups.map((_, k) => groups[(k + rep - 1) % groups.length] ?? []);
  return rotated.flatMap((group) => (rep % 2 === 1 ? [...group] : [...group].reverse()));
}

/** Width of the implementation column in the progress lines (the longest name). */
let implWidth = 17;

function label(rep: number, reps: number, caseName: string, impl: string): string {
  return `[rep ${rep}/${reps}] ${caseName.padEnd(5)} ${impl.padEnd(implWidth)}`;
}

function otherShare(r: RunRecord): number {
  return r.client ? r.otherCpuMs / r.client.wallMs : NaN;
}

/** calls/s of `r` over those of `ref`, a run of the same repetition and case. */
function ratioTo(r: RunRecord, ref: RunRecord | undefined): number | undefined {
  if (!r.client || !ref?.client || ref.client.callsPerSec <= 0) return undefined;
  return round(r.client.callsPerSec / ref.client.callsPerSec, 3);
}

/** What the comparison of two trees compares, of one run; NaN for a failed run. */
function metricsOf(r: RunRecord): Metrics {
  return {
    callsPerSec: r.client?.callsPerSec ?? NaN,
    clientUsPerCall: r.clientUsPerCall,
    serverUsPerCall: r.serverUsPerCall,
    p99Ms: r.client?.p99Ms ?? NaN,
    maxRssMb: r.client?.maxRssMb ?? NaN,
  };
}

/**
 * Sets the ratios to raw and to raw-wire of one repetition's runs of one case, and those of
 * each working-tree run to the other tree's run of the same implementation.
 */
function setRatios(repRuns: readonly RunRecord[]): void {
  const raw = repRuns.find((r) => r.impl === 'raw');
  const wire = repRuns.find((r) => r.impl === 'raw-wire');
  for (const r of repRuns) {
    const toRaw = ratioTo(r, raw);
    if (raw && toRaw !== undefined) {
      r.ratioToRaw = toRaw;
      r.ratioDisturbed = r.disturbed || raw.disturbed;
    }
    const toWire = ratioTo(r, wire);
    if (wire && toWire !== undefined) {
      r.ratioToWire = toWire;
      r.ratioToWireDisturbed = r.disturbed || wire.disturbed;
    }
    const theirs =
      r.tree === '' ? repRuns.find((o) => o.tree !== '' && o.base === r.base) : undefined;
    if (theirs) {
      r.vsOther = {
        ...ratios(metricsOf(r), metricsOf(theirs)),
        disturbed: r.disturbed || theirs.disturbed,
      };
    }
  }
}

/** Per case and implementation: the median ratios of the working tree to the other tree. */
function compare(
  runs: readonly RunRecord[],
  cases: readonly CaseDef[],
  variants: readonly Variant[],
): ComparisonRow[] {
  const rows: ComparisonRow[] = [];
  for (const c of cases) {
    for (const v of variants) {
      const theirs = variants.find((o) => o.tree !== '' && o.impl === v.impl);
      if (v.tree !== '' || !theirs) continue;
      const pairs = runs.flatMap((r) =>
        r.case === c.name && r.impl === v.name && r.vsOther
          ? [{ ratios: r.vsOther, disturbed: r.vsOther.disturbed }]
          : [],
      );
      if (pairs.length === 0) continue;
      rows.push({ case: c.name, impl: v.name, other: theirs.name, ...medianRatios(pairs) });
    }
  }
  return rows;
}

/** Median of per-repetition ratios, from undisturbed pairs of runs when there are any. */
function medianRatio(
  ratios: readonly { value: number | undefined; disturbed: boolean | undefined }[],
): number {
  const known = ratios.filter((x) => x.value !== undefined);
  const clean = known.filter((x) => x.disturbed !== true);
  return round(median((clean.length > 0 ? clean : known).map((x) => x.value ?? NaN)), 3);
}

function badCalls(r: RunRecord): number {
  if (!r.client) return r.n;
  return r.client.errors + r.client.mismatches + r.client.missing + r.client.unknownReplies;
}

function line(r: RunRecord): string {
  const c = r.client;
  if (!c) return `FAILED: ${r.failure ?? 'no result'}`;
  const bad = badCalls(r);
  return (
    `${fmtInt(c.callsPerSec).padStart(7)} calls/s  p50 ${fmtMs(c.p50Ms)} p99 ${fmtMs(c.p99Ms)} p99.9 ${fmtMs(c.p999Ms)} ms  ` +
    `CPU µs/call ${fmtInt(r.clientUsPerCall)}/${fmtInt(r.serverUsPerCall)}/${fmtInt(r.brokerUsPerCall)}  ` +
    `RSS ${c.maxRssMb} MB` +
    (r.ratioToRaw !== undefined ? `  ×raw ${r.ratioToRaw.toFixed(2)}` : '') +
    (r.ratioToWire !== undefined ? `  ×wire ${r.ratioToWire.toFixed(2)}` : '') +
    (r.disturbed ? '  DISTURBED' : '') +
    (bad > 0 ? `  BAD ${bad}: ${c.firstError ?? ''}` : '')
  );
}

interface CaseArgs {
  rep: number;
  c: CaseDef;
  variant: Variant;
  url: string;
  prefetch: number;
  attempt: number;
  brokerPid: number | undefined;
  quietWaitS: number;
  warmupS: number;
  frameMax: number | undefined;
  nodeArgs: readonly string[];
}

async function runCase({
  rep,
  c,
  variant,
  url,
  prefetch,
  attempt,
  brokerPid,
  quietWaitS,
  warmupS,
  frameMax,
  nodeArgs,
}: CaseArgs): Promise<RunRecord> {
  const { bundle, impl } = variant;
  const queue = `bench.rpc.${variant.name}`;
  const params: WorkerParams = {
    role: 'server',
    impl,
    url,
    queue,
    conc: c.conc,
    n: c.n,
    warmup: c.warmup,
    warmupS,
    payload: c.payload,
    prefetch,
    timeoutS: 120,
  };
  if (frameMax !== undefined) params.frameMax = frameMax;
  const record: RunRecord = {
    rep,
    case: c.name,
    impl: variant.name,
    base: impl,
    tree: variant.tree,
    conc: c.conc,
    n: c.n,
    warmup: c.warmup,
    payload: c.payload,
    prefetch,
    attempt,
    disturbed: false,
    quietWaitS: 0,
    client: undefined,
    serverCpuMs: NaN,
    brokerCpuMs: NaN,
    otherCpuMs: NaN,
    clientUsPerCall: NaN,
    serverUsPerCall: NaN,
    brokerUsPerCall: NaN,
    at: new Date().toISOString(),
  };
  record.quietWaitS = await waitQuiet(0.15, quietWaitS);
  await deleteQueues(url, [queue, `${queue}.reply`]);
  const server = new Worker(bundle, params, nodeArgs);
  let client: Worker | undefined;
  try {
    await server.expect('ready');
    client = new Worker(bundle, { ...params, role: 'client' }, nodeArgs);
    const marks: Array<{ server: number; broker: number; machine: number }> = [];
    client.onMessage = (message) => {
      if (message.type === 'mark') {
        marks.push({
          server: processCpuMs(server.pid),
          broker: processCpuMs(brokerPid),
          machine: machineBusyMs(),
        });
      }
    };
    const { result } = await client.expect('result');
    await client.exited;
    record.client = result;
    const [start, end] = marks;
    if (start && end) {
      record.serverCpuMs = end.server - start.server;
      record.brokerCpuMs = end.broker - start.broker;
      record.otherCpuMs = round(
        end.machine - start.machine - record.serverCpuMs - record.brokerCpuMs - result.cpuMs,
        0,
      );
      record.disturbed = record.otherCpuMs / result.wallMs > 0.25;
    }
    const calls = Math.max(1, result.ok);
    record.clientUsPerCall = round((result.cpuMs * 1000) / calls, 1);
    record.serverUsPerCall = round((record.serverCpuMs * 1000) / calls, 1);
    record.brokerUsPerCall = round((record.brokerCpuMs * 1000) / calls, 1);
  } catch (error) {
    record.failure = error instanceof Error ? error.message : String(error);
  } finally {
    await client?.stop();
    await server.stop();
    await deleteQueues(url, [queue, `${queue}.reply`]).catch(() => undefined);
    await sleep(200);
  }
  return record;
}

function summarize(
  runs: readonly RunRecord[],
  cases: readonly CaseDef[],
  impls: readonly string[],
): SummaryRow[] {
  // A disturbed run that was run again is left out; the last attempt always counts.
  const kept = runs.filter(
    (r) =>
      !r.disturbed ||
      !runs.some(
        (o) => o.rep === r.rep && o.case === r.case && o.impl === r.impl && o.attempt > r.attempt,
      ),
  );
  const rows: SummaryRow[] = [];
  for (const c of cases) {
    for (const impl of impls) {
      const all = kept.filter((r) => r.case === c.name && r.impl === impl);
      if (all.length === 0) continue;
      // Runs still disturbed after their retries count only when no clean run exists.
      const clean = all.filter((r) => !r.disturbed);
      const mine = clean.length > 0 ? clean : all;
      const ok = mine.flatMap((r) => (r.client ? [r.client] : []));
      const cps = ok.map((r) => r.callsPerSec);
      rows.push({
        case: c.name,
        impl,
        runs: all.length,
        disturbedRuns: all.length - clean.length,
        calls: all.reduce((sum, r) => sum + r.n, 0),
        bad: all.reduce((sum, r) => sum + badCalls(r), 0),
        callsPerSec: round(median(cps), 0),
        callsPerSecMin: round(Math.min(...cps), 0),
        callsPerSecMax: round(Math.max(...cps), 0),
        ratioToRaw: medianRatio(
          all.map((r) => ({ value: r.ratioToRaw, disturbed: r.ratioDisturbed })),
        ),
        ratioToWire: medianRatio(
          all.map((r) => ({ value: r.ratioToWire, disturbed: r.ratioToWireDisturbed })),
        ),
        p50Ms: round(median(ok.map((r) => r.p50Ms)), 3),
        p99Ms: round(median(ok.map((r) => r.p99Ms)), 3),
        p999Ms: round(median(ok.map((r) => r.p999Ms)), 3),
        clientUsPerCall: round(median(mine.map((r) => r.clientUsPerCall)), 1),
        serverUsPerCall: round(median(mine.map((r) => r.serverUsPerCall)), 1),
        brokerUsPerCall: round(median(mine.map((r) => r.brokerUsPerCall)), 1),
        clientMaxRssMb: round(median(ok.map((r) => r.maxRssMb)), 1),
        otherCpuShare: round(median(mine.map(otherShare)), 3),
      });
    }
  }
  return rows;
}

function renderTables(
  rows: readonly SummaryRow[],
  cases: readonly CaseDef[],
  impls: readonly string[],
  reps: number,
): string {
  const out: string[] = [];
  // The ×wire column (ratios to raw-wire) only when raw-wire ran.
  const wire = impls.includes('raw-wire');
  out.push(
    `Medians over ${reps} repetition(s), leaving out runs disturbed by other load when clean ones exist; ×raw = median of per-repetition ratios to raw in the same case${wire ? ', ×wire the same to raw-wire' : ''}.\n`,
  );
  out.push(
    `| implementation | ${cases.map((c) => c.title).join(' | ')} | client peak RSS MB (c=256) |`,
  );
  out.push(`|---|${cases.map(() => '---:|').join('')}---:|`);
  for (const impl of impls) {
    const cells = cases.map((c) => {
      const row = rows.find((r) => r.case === c.name && r.impl === impl);
      return row ? `${fmtInt(row.callsPerSec)} (${fmtPct(row.ratioToRaw)})` : '';
    });
    const rss = rows.find((r) => r.case === 'c256' && r.impl === impl)?.clientMaxRssMb;
    out.push(`| ${impl} | ${cells.join(' | ')} | ${rss === undefined ? '' : String(rss)} |`);
  }
  for (const c of cases) {
    out.push(
      `\n${c.title}: c=${c.conc}, n=${c.n}${c.payload ? `, request ≈ ${c.payload} B` : ''}\n`,
    );
    out.push(
      `| implementation | calls/s median (min–max) | ×raw |${wire ? ' ×wire |' : ''} p50 / p99 / p99.9 ms | CPU µs/call client / server / broker | client peak RSS MB | other CPU | disturbed runs | bad calls |`,
    );
    out.push(`|---|---:|---:|${wire ? '---:|' : ''}---:|---:|---:|---:|---:|---:|`);
    for (const row of rows.filter((r) => r.case === c.name)) {
      out.push(
        `| ${row.impl} | ${fmtInt(row.callsPerSec)} (${fmtInt(row.callsPerSecMin)}–${fmtInt(row.callsPerSecMax)}) | ${fmtRatio(row.ratioToRaw)} |${wire ? ` ${fmtRatio(row.ratioToWire)} |` : ''} ` +
          `${fmtMs(row.p50Ms)} / ${fmtMs(row.p99Ms)} / ${fmtMs(row.p999Ms)} | ` +
          `${fmtInt(row.clientUsPerCall)} / ${fmtInt(row.serverUsPerCall)} / ${fmtInt(row.brokerUsPerCall)} | ${row.clientMaxRssMb} | ${fmtPct(row.otherCpuShare)} | ${row.disturbedRuns} of ${row.runs} | ${row.bad} of ${row.calls} |`,
      );
    }
  }
  return out.join('\n');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  killAllChildren('SIGKILL');
  process.exit(1);
});
