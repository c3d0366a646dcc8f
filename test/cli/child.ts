import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AMQP_URL } from '../helpers.js';

/** The checkout's root; children run there. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The built CLI: the tests run it as `node dist/cli.js`, as users do. */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
/** Debian's python3, the one with pika (the pyenv python3 on PATH has none). */
export const PYTHON = '/usr/bin/python3';

/**
 * The exit codes docs/cli.md promises scripts, written out here rather than imported from
 * src/cli/output.ts, so that a change to the numbers fails the tests.
 */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  UNAVAILABLE: 3,
  DEADLINE_EXCEEDED: 4,
  INTERRUPTED: 130,
} as const;

/** Throws a clear message when dist/cli.js is missing, instead of N confusing failures. */
export function requireBuiltCli(): void {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} does not exist: build it first with "npx tsup" (or "npm run build")`);
  }
}

export interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const running = new Set<Child>();
// One hook for the whole test file: no child outlives it, whatever failed.
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** A child process whose output is collected, with a way to wait for a line of it. */
export class Child {
  readonly process: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Finished>;
  readonly #listeners = new Set<() => void>();
  #finished: Finished | undefined;

  constructor(
    command: string,
    args: readonly string[],
    env: Record<string, string> = {},
    stdin: 'ignore' | 'pipe' = 'ignore',
  ) {
    this.process = spawn(command, args, {
      cwd: ROOT,
      env: { ...process.env, AMQP_URL, NO_COLOR: '1', ...env },
      stdio: [stdin, 'pipe', 'pipe'],
    });
    running.add(this);
    this.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.#notify();
    });
    this.process.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.#notify();
    });
    this.exited = new Promise<Finished>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        running.delete(this);
        this.#finished ??= { code, signal, stdout: this.stdout, stderr: this.stderr };
        this.#notify();
        resolve(this.#finished);
      };
      this.process.on('close', finish);
      this.process.on('error', (error) => {
        this.stderr += `spawn failed: ${error.message}\n`;
        finish(null, null);
      });
    });
  }

  /**
   * Resolves with the first match of `pattern` in the child's stdout or stderr. Rejects when
   * the child exits without printing it, or after `limitMs` (a safety net, not a delay).
   */
  waitFor(pattern: RegExp, stream: 'stdout' | 'stderr', limitMs = 15_000): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(this[stream]);
        if (match) done(() => resolve(match[0]));
        else if (this.#finished)
          done(() => reject(this.#failure(`exited before printing ${String(pattern)}`)));
      };
      const timer = setTimeout(() => {
        done(() => reject(this.#failure(`printed no ${String(pattern)} within ${limitMs} ms`)));
      }, limitMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        settle();
      };
      this.#listeners.add(check);
      check();
    });
  }

  /** Writes `line` and a newline to the child's stdin (started with `stdin: 'pipe'`). */
  writeLine(line: string): void {
    if (!this.process.stdin) throw new Error('this child was started without a stdin pipe');
    this.process.stdin.write(`${line}\n`);
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.#finished) this.process.kill(signal);
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  #failure(what: string): Error {
    return new Error(`${what}\n--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`);
  }
}

/** Starts `node dist/cli.js ...args` and returns it running. */
export function startCli(args: readonly string[], env: Record<string, string> = {}): Child {
  return new Child(process.execPath, [CLI, ...args], env);
}

/**
 * Runs `node dist/cli.js ...args` to its end. Kills it after `limitMs` (a safety net for a
 * hung CLI; the result then has `signal: 'SIGKILL'`).
 */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
  limitMs = 20_000,
): Promise<Finished> {
  return runToEnd(startCli(args, env), limitMs);
}

/** Waits for `child` to exit, killing it after `limitMs`. */
export async function runToEnd(child: Child, limitMs = 20_000): Promise<Finished> {
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  try {
    return await child.exited;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a Python script from test/fixtures with /usr/bin/python3 -u (unbuffered output).
 * With `stdin: 'pipe'` the test can write to it (`writeLine`).
 */
export function startPython(
  script: string,
  args: readonly string[],
  stdin: 'ignore' | 'pipe' = 'ignore',
): Child {
  return new Child(
    PYTHON,
    ['-u', fileURLToPath(new URL(`../fixtures/${script}`, import.meta.url)), ...args],
    // The fixtures import pika_peer.py: no __pycache__ left in the checkout.
    { PYTHONDONTWRITEBYTECODE: '1' },
    stdin,
  );
}

/** Absolute path of a file in test/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
}
