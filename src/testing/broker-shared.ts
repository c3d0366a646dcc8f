import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import {
  access,
  chmod,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrivateBrokerError } from './broker-error.js';
import type { PrivateBrokerOptions } from './broker-options.js';
import { cleanEnv, findEpmd, findEpmdIn, outside, prepareRoot, tail } from './broker-process.js';
import { freePort, portAnswers } from './ports.js';

const DEFAULT_BIN_DIR = '/usr/lib/rabbitmq/bin';
const DIR_PREFIX = 'rabbit-rpc-broker-';

/**
 * Runs in `/bin/sh` next to each private broker with its stdin piped from this process.
 * When this process exits for any reason (even SIGKILL) the pipe closes, `cat` returns,
 * and the watchdog kills the broker's Erlang processes and removes its folder, so no
 * broker outlives the tests that started it. After a normal `close()` it finds nothing.
 */
const WATCHDOG = `
cat >/dev/null 2>&1
case "$1" in */${DIR_PREFIX}*) ;; *) exit 0 ;; esac
for f in "$1"/*/beam.pid "$1"/epmd.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f" 2>/dev/null)
  case "$pid" in ''|*[!0-9]*) continue ;; esac
  case "$(tr '\\0' ' ' < /proc/$pid/cmdline 2>/dev/null)" in
    *beam*|*epmd*) kill -9 "$pid" 2>/dev/null ;;
  esac
done
sleep 1
rm -rf "$1"
`;

/**
 * @internal What the nodes of one broker or cluster share: folder, cookie, private epmd,
 * watchdog.
 */
export class Shared {
  #epmd: ChildProcess | undefined;
  #watchdog: ChildProcess | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    /** The folder, as this process sees it. */
    readonly dir: string,
    readonly binDir: string,
    readonly epmdPath: string,
    readonly epmdPort: number,
    readonly startTimeoutMs: number,
    /** The root file system the node runs in, if any (see `PrivateBrokerOptions.chroot`). */
    readonly root: string | undefined,
  ) {}

  static async create(options: PrivateBrokerOptions): Promise<Shared> {
    const root = (options.chroot ?? process.env['RABBITMQ_CHROOT']) || undefined;
    const binDir = options.rabbitmqBinDir ?? process.env['RABBITMQ_BIN_DIR'] ?? DEFAULT_BIN_DIR;
    const server = outside(root, path.join(binDir, 'rabbitmq-server'));
    try {
      await access(server, fsConstants.X_OK);
    } catch (error) {
      throw new PrivateBrokerError(
        'NOT_INSTALLED',
        root === undefined
          ? `RabbitMQ is not installed: ${server} is missing. Install it (Debian/Ubuntu: ` +
              `apt-get install rabbitmq-server) or set RABBITMQ_BIN_DIR to the folder holding ` +
              `rabbitmq-server and rabbitmqctl.`
          : `no RabbitMQ in the root ${root}: ${server} is missing. Build it with ` +
              `sudo bash scripts/rabbitmq4.sh build.`,
        { cause: error },
      );
    }
    if (root !== undefined) await prepareRoot(root);
    const epmdPath = root === undefined ? await findEpmd() : await findEpmdIn(root);
    const parent = outside(root, options.baseDir ?? (root === undefined ? os.tmpdir() : '/tmp'));
    await mkdir(parent, { recursive: true });
    const dir = await mkdtemp(path.join(parent, DIR_PREFIX));
    const shared = new Shared(
      dir,
      binDir,
      epmdPath,
      await freePort(),
      options.startTimeoutMs ?? 90_000,
      root,
    );
    try {
      shared.#startWatchdog();
      // One cookie for the nodes and for rabbitmqctl: both read $HOME/.erlang.cookie.
      const cookie = path.join(dir, '.erlang.cookie');
      await writeFile(cookie, randomBytes(20).toString('hex'));
      await chmod(cookie, 0o400);
      await shared.#startEpmd();
    } catch (error) {
      await shared.close();
      throw error;
    }
    return shared;
  }

  /** The lines of the root's `/etc/rabbitmq/conf.d/*.conf`, in file name order; none without a root. */
  async rootConfig(): Promise<string[]> {
    if (this.root === undefined) return [];
    const confD = path.join(this.root, 'etc', 'rabbitmq', 'conf.d');
    const names = (await readdir(confD).catch(() => [])).filter((file) => file.endsWith('.conf'));
    const lines: string[] = [];
    for (const file of names.sort()) {
      lines.push(`# from ${path.join('/etc/rabbitmq/conf.d', file)} in ${this.root}`);
      lines.push((await readFile(path.join(confD, file), 'utf8')).trim());
    }
    return lines;
  }

  /** A path of this process's file system as the node sees it (inside the root). */
  inside(file: string): string {
    return this.root === undefined ? file : path.join('/', path.relative(this.root, file));
  }

  /** The command line that runs `file` (a path the node sees) for the node. */
  command(file: string, args: readonly string[]): [string, string[]] {
    return this.root === undefined ? [file, [...args]] : ['chroot', [this.root, file, ...args]];
  }

  #startWatchdog(): void {
    const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'rabbit-rpc-watchdog', this.dir], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    watchdog.on('error', () => undefined);
    watchdog.stdin.on('error', () => undefined);
    watchdog.unref();
    // The pipe must not keep this process alive.
    (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
    this.#watchdog = watchdog;
  }

  async #startEpmd(): Promise<void> {
    const log = await open(path.join(this.dir, 'epmd.log'), 'a');
    let epmd: ChildProcess;
    try {
      const [command, args] = this.command(this.epmdPath, [
        '-port',
        String(this.epmdPort),
        '-address',
        '127.0.0.1',
      ]);
      epmd = spawn(command, args, {
        stdio: ['ignore', log.fd, log.fd],
        env: { ...cleanEnv(), ERL_EPMD_PORT: String(this.epmdPort), ERL_EPMD_ADDRESS: '127.0.0.1' },
      });
    } finally {
      await log.close();
    }
    epmd.on('error', () => undefined);
    this.#epmd = epmd;
    if (epmd.pid !== undefined) await writeFile(path.join(this.dir, 'epmd.pid'), String(epmd.pid));
    const deadline = Date.now() + 10_000;
    while (!(await portAnswers(this.epmdPort))) {
      if (epmd.exitCode !== null || epmd.signalCode !== null || Date.now() > deadline) {
        throw new PrivateBrokerError(
          'START_FAILED',
          `the private epmd on port ${this.epmdPort} did not start: ${await tail(path.join(this.dir, 'epmd.log'))}`,
        );
      }
      await sleep(50);
    }
  }

  /** Kills epmd, removes the folder and lets the watchdog go. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const epmd = this.#epmd;
      if (epmd && epmd.exitCode === null && epmd.signalCode === null) {
        const exited = new Promise((resolve) => epmd.once('exit', resolve));
        epmd.kill('SIGKILL');
        await exited;
      }
      await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
      this.#watchdog?.stdin?.end();
    })();
    return this.#closing;
  }
}
