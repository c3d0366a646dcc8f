/**
 * What the orchestrators (bench/run.ts, bench/soak.ts) need from the machine: CPU time of
 * processes and of the whole machine from /proc, the broker's pid, queue clean-up, the
 * worker bundle, and child processes that never outlive the benchmark.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { build, type Options as TsupOptions } from 'tsup';
import type { WorkerMessage, WorkerParams } from './common.js';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const RESULTS_DIR = join(BENCH_DIR, 'results');

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU time (user + system, all threads) of a process in ms, from /proc/<pid>/stat; NaN if gone. */
export function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name "(...)": state is the 3rd field, utime the 14th, stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/** Busy CPU time of the whole machine in ms (user + nice + system + irq + softirq), from /proc/stat. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return ((user + nice + system + irq + softirq) * 1000) / CLK_TCK;
}

/**
 * The pid of the broker listening on the URL's port: BENCH_BROKER_PID if set, else the
 * listener `ss` reports, else the only beam.smp process. Undefined when not found (then
 * broker CPU is not reported).
 */
export function findBrokerPid(url: string): number | undefined {
  const fromEnv = process.env['BENCH_BROKER_PID'];
  if (fromEnv) return Number(fromEnv);
  const port = new URL(url).port || '5672';
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString();
    const match = /pid=(\d+)/.exec(out);
    if (match?.[1]) return Number(match[1]);
  } catch {
    // no ss, or not allowed to see the pid: fall back to the process list
  }
  const beams: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'beam.smp')
        beams.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return beams.length === 1 ? beams[0] : undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/**
 * Waits until the machine is quiet (less than `share` of one core busy over 0.5 s), at most
 * `maxS` seconds. Returns the seconds waited, or -1 if it never got quiet.
 */
export async function waitQuiet(share = 0.15, maxS = 15): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const before = machineBusyMs();
    await sleep(500);
    if (machineBusyMs() - before < 500 * share) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > maxS * 1000) return -1;
  }
}

/** Deletes the queues (if they exist) and returns the broker's version string. */
export async function deleteQueues(url: string, names: readonly string[]): Promise<string> {
  const connection = await amqp.connect(url);
  try {
    const channel = await connection.createChannel();
    for (const name of names) await channel.deleteQueue(name);
    await channel.close();
    const version = connection.connection.serverProperties.version;
    return typeof version === 'string' ? version : 'unknown';
  } finally {
    await connection.close();
  }
}

const PROJECT_DIR = resolve(BENCH_DIR, '..');

/**
 * Exports src/ of a git revision into a temporary directory; returns that src/ and a
 * clean-up. Only src/ is exported: the bundle resolves packages (the patched
 * @cloudamqp/amqp-client among them) from the working tree's node_modules, and compiles
 * with the working tree's tsconfig.json.
 */
export function exportRevision(rev: string): { src: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'rabbit-rpc-bench-'));
  const tar = execFileSync('git', ['-C', PROJECT_DIR, 'archive', '--format=tar', rev, 'src'], {
    maxBuffer: 256 * 1024 * 1024,
  });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  return { src: join(dir, 'src'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The commit checked out and whether src/ differs from it (what "src/" means in a result). */
export function gitState(): { commit: string; srcDirty: boolean } | undefined {
  try {
    const commit = execFileSync('git', ['-C', PROJECT_DIR, 'rev-parse', 'HEAD']).toString().trim();
    const status = execFileSync('git', [
      '-C',
      PROJECT_DIR,
      'status',
      '--porcelain',
      '--',
      'src',
    ]).toString();
    return { commit, srcDirty: status.trim().length > 0 };
  } catch {
    return undefined;
  }
}

/** A rabbit-rpc source tree to bundle the workers with. */
export interface RpcTree {
  /** Its src/ directory; undefined for the working tree's own src/. */
  src: string | undefined;
  /** What the tree's implementations are called after "@" (a short commit); '' for the working tree. */
  tag: string;
  /** Which tree, for the output and the JSON. */
  label: string;
  remove: () => void;
}

/** The working tree's src/, with the commit it is at and whether it has uncommitted changes. */
export function workingTree(): RpcTree {
  const git = gitState();
  const where = git
    ? ` at ${git.commit.slice(0, 7)}${git.srcDirty ? ' with uncommitted changes' : ''}`
    : '';
  return {
    src: undefined,
    tag: '',
    label: `src/ of the working tree${where}`,
    remove: () => undefined,
  };
}

/**
 * The other tree that `--rpc-rev REV` (src/ of that git revision, exported) or `--rpc-src
 * DIR` names, or undefined when neither is given. Its tag is the revision's short commit,
 * or DIR's name (its parent's when DIR is called src).
 */
export function otherTree(flags: Map<string, string>): RpcTree | undefined {
  const rev = flags.get('rpc-rev');
  const dir = flags.get('rpc-src');
  if (rev !== undefined && dir !== undefined)
    throw new Error('give --rpc-rev or --rpc-src, not both');
  if (rev !== undefined) {
    let commit: string;
    try {
      commit = execFileSync(
        'git',
        ['-C', PROJECT_DIR, 'rev-parse', '--verify', '--short=7', `${rev}^{commit}`],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      )
        .toString()
        .trim();
    } catch {
      throw new Error(`--rpc-rev ${rev}: not a commit in ${PROJECT_DIR}`);
    }
    const exported = exportRevision(commit);
    return {
      src: exported.src,
      tag: commit,
      label: `src/ of git ${rev} (${commit})`,
      remove: exported.remove,
    };
  }
  if (dir !== undefined) {
    const full = resolve(dir);
    if (!existsSync(join(full, 'index.ts')))
      throw new Error(`--rpc-src ${dir}: no index.ts there (give the src/ directory)`);
    const name = basename(full) === 'src' ? basename(dirname(full)) : basename(full);
    return { src: full, tag: name.replace(/[^\w.-]/g, '_'), label: full, remove: () => undefined };
  }
  return undefined;
}

/** bench/soak.ts: the one tree it measures, `--rpc-rev` / `--rpc-src` instead of the working tree. */
export function rpcSource(flags: Map<string, string>): RpcTree {
  return otherTree(flags) ?? workingTree();
}

type EsbuildPlugin = NonNullable<TsupOptions['esbuildPlugins']>[number];

/**
 * Bundles bench/worker.ts (with the project source it imports) into one ESM file that
 * plain `node` runs, so the workers carry no TypeScript loader (tsx adds about 30 MB RSS
 * and a loader thread). `rpcSrc` swaps the project's src/ for another source tree, to
 * measure an older revision or a modified copy of the library: only imports of the public
 * entry src/index.ts are redirected (to `rpcSrc`/index.ts), and the other tree's own
 * relative imports then resolve within it, whatever its internal layout. `name` keeps the
 * bundles of several trees apart. Returns the bundle path and a clean-up function.
 */
export async function bundleWorker(
  rpcSrc: string | undefined,
  name = 'worker',
): Promise<{ path: string; remove: () => void }> {
  const outDir = join(RESULTS_DIR, '.build', String(process.pid), name);
  const plugins: EsbuildPlugin[] = [];
  if (rpcSrc !== undefined) {
    const srcDir = resolve(rpcSrc);
    const projectSrc = join(BENCH_DIR, '..', 'src');
    plugins.push({
      name: 'rpc-src',
      setup(b) {
        // Imports of the project's src/ from bench/ go to the other tree instead.
        b.onResolve({ filter: /\/src\/index\.js$/ }, (args) => {
          const target = resolve(args.resolveDir, args.path);
          if (target !== join(projectSrc, 'index.js')) return undefined;
          return { path: join(srcDir, 'index.ts') };
        });
      },
    });
  }
  await build({
    entry: { worker: join(BENCH_DIR, 'worker.ts') },
    outDir,
    format: ['esm'],
    outExtension: () => ({ js: '.mjs' }),
    platform: 'node',
    target: 'node20',
    config: false,
    silent: true,
    splitting: false,
    sourcemap: false,
    dts: false,
    clean: false,
    external: ['amqplib', '@cloudamqp/amqp-client'],
    esbuildPlugins: plugins,
  });
  return {
    path: join(outDir, 'worker.mjs'),
    remove: () => {
      rmSync(outDir, { recursive: true, force: true });
      // The run's directory too, once its last bundle is gone.
      if (readdirSync(dirname(outDir)).length === 0) rmSync(dirname(outDir), { recursive: true });
    },
  };
}

/** Every child still running; killed when the benchmark exits for any reason. */
const children = new Set<ChildProcess>();

export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  }
}

let guarded = false;
/** Kills the children on exit, on Ctrl-C / SIGTERM and on an uncaught error. */
export function guardChildren(onSignal: () => Promise<void> = () => Promise.resolve()): void {
  if (guarded) return;
  guarded = true;
  process.on('exit', () => killAllChildren('SIGKILL'));
  const stop = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping the benchmark processes\n`);
    killAllChildren('SIGTERM');
    const timer = setTimeout(() => process.exit(130), 3000);
    void onSignal().finally(() => {
      clearTimeout(timer);
      process.exit(130);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** A worker process: its messages as a queue to await, its stderr kept for errors. */
export class Worker {
  readonly child: ChildProcess;
  stderr = '';
  #messages: WorkerMessage[] = [];
  #waiters: Array<(message: WorkerMessage | undefined) => void> = [];
  #exited = false;
  readonly exited: Promise<number | null>;
  /** Called synchronously for every message, before it is queued (for CPU marks). */
  onMessage: ((message: WorkerMessage) => void) | undefined;

  constructor(bundle: string, params: WorkerParams, nodeArgs: readonly string[] = []) {
    this.child = spawn(process.execPath, [...nodeArgs, bundle, JSON.stringify(params)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    children.add(this.child);
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    this.child.on('message', (message: WorkerMessage) => {
      this.onMessage?.(message);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(message);
      else this.#messages.push(message);
    });
    this.exited = new Promise((done) => {
      this.child.on('exit', (code) => {
        children.delete(this.child);
        this.#exited = true;
        for (const waiter of this.#waiters.splice(0)) waiter(undefined);
        done(code);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The next message, or undefined once the worker has exited. */
  next(): Promise<WorkerMessage | undefined> {
    const queued = this.#messages.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#exited) return Promise.resolve(undefined);
    return new Promise((done) => this.#waiters.push(done));
  }

  /** Waits for a message of this type; throws if the worker fails or exits first. */
  async expect<T extends WorkerMessage['type']>(
    type: T,
  ): Promise<Extract<WorkerMessage, { type: T }>> {
    for (;;) {
      const message = await this.next();
      if (!message)
        throw new Error(`worker exited before sending "${type}": ${this.stderr.trim()}`);
      if (message.type === 'failed') throw new Error(`worker failed: ${message.message}`);
      if (message.type === type) return message as Extract<WorkerMessage, { type: T }>;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
