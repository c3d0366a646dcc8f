/**
 * Process, file and Erlang helpers of the private-broker harness: the environment a node
 * runs with, the chroot root, finding epmd, signals, waiting for an exit, log tails.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { PrivateBrokerError } from './broker-error.js';

const execFileAsync = promisify(execFile);

/** The environment without inherited RABBITMQ_* and ERL_* variables. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('RABBITMQ_') && !key.startsWith('ERL_'))
      env[key] = value;
  }
  return env;
}

/** `file` (a path inside `root`) as this process sees it. */
export function outside(root: string | undefined, file: string): string {
  return root === undefined ? file : path.join(root, file);
}

/**
 * Erlang needs /proc inside the root; mounts it when it is not (once per boot, as
 * `scripts/rabbitmq4.sh start` does). chroot needs root anyway.
 */
export async function prepareRoot(root: string): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new PrivateBrokerError(
      'NOT_INSTALLED',
      `a private broker in the root ${root} runs with chroot, which needs root`,
    );
  }
  try {
    await access(path.join(root, 'proc', 'self'));
  } catch {
    try {
      await execFileAsync('mount', ['-t', 'proc', 'proc', path.join(root, 'proc')]);
    } catch (error) {
      throw new PrivateBrokerError(
        'START_FAILED',
        `could not mount /proc in ${root}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }
}

/** The epmd of the Erlang inside `root`, as a path inside it. */
export async function findEpmdIn(root: string): Promise<string> {
  for (const candidate of ['/usr/bin/epmd', '/usr/lib/erlang/bin/epmd']) {
    try {
      await access(path.join(root, candidate), fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new PrivateBrokerError('NOT_INSTALLED', `no epmd in the root ${root}`);
}

export async function findEpmd(): Promise<string> {
  const dirs = [
    ...(process.env['PATH'] ?? '').split(path.delimiter),
    '/usr/lib/erlang/bin',
    '/usr/local/lib/erlang/bin',
  ];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = path.join(dir, 'epmd');
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new PrivateBrokerError(
    'NOT_INSTALLED',
    'Erlang is not installed: no epmd on PATH (it comes with rabbitmq-server)',
  );
}

export function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Waits (at most 5 s) until `pid` has exited; a zombie counts as exited. */
export async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/^\d+ \(.*\) Z/.test(stat)) return;
    await sleep(50);
  }
}

export async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${path.basename(file)})`;
  }
}
