import { spawn, execFile, type ChildProcess } from 'node:child_process';
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
import { promisify } from 'node:util';
import { amqpAnswers, freePort, portAnswers } from './ports.js';
import { createTestCertificates } from './tls.js';
import { checkOptionNames, optionNames } from '../option-names.js';

/** Why a private broker could not do what was asked. */
export type PrivateBrokerErrorCode =
  /** rabbitmq-server (or Erlang's epmd) is not installed where the harness looks. */
  | 'NOT_INSTALLED'
  /** The node did not boot, or did not answer AMQP within `startTimeoutMs`. */
  | 'START_FAILED'
  /** A `rabbitmqctl` command failed. */
  | 'CTL_FAILED'
  /** The broker was already closed, or is not running when it must be. */
  | 'NOT_RUNNING';

/** The one error class of the test harness; `code` says what went wrong. */
export class PrivateBrokerError extends Error {
  override readonly name = 'PrivateBrokerError';
  constructor(
    readonly code: PrivateBrokerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options of {@link startPrivateBroker}. */
export interface PrivateBrokerOptions {
  /** AMQP port on 127.0.0.1. @default a free port picked by the OS */
  amqpPort?: number;
  /** Node name before `@localhost`. @default `rpc` plus random hex */
  name?: string;
  /**
   * Folder in which the broker's own temporary folder (data, logs, cookie) is created;
   * `close()` removes that temporary folder. @default os.tmpdir()
   */
  baseDir?: string;
  /** Extra `rabbitmq.conf` lines (new-style sysctl format), appended to the harness's own. */
  config?: string;
  /** How long the node may take to boot and answer AMQP. @default 90000 */
  startTimeoutMs?: number;
  /**
   * Also listen for AMQP over TLS on another free port of 127.0.0.1, with a throwaway CA
   * and a server certificate for `localhost` and `127.0.0.1` (made with `openssl`). The
   * broker then has `amqpsUrl`, `tlsPort` and `caPem` (trust it with `tls: { ca }`).
   * @default false
   */
  tls?: boolean;
  /**
   * Folder holding the real `rabbitmq-server` and `rabbitmqctl` scripts (not the `/usr/sbin`
   * wrappers, which switch to the system user and cookie). With `chroot`, a path inside
   * the root.
   * @default process.env.RABBITMQ_BIN_DIR, else '/usr/lib/rabbitmq/bin' (Debian, Ubuntu)
   */
  rabbitmqBinDir?: string;
  /**
   * A root file system holding another RabbitMQ installation, for example RabbitMQ 4.x from
   * Debian 13 built by `scripts/rabbitmq4.sh` (`/var/lib/rabbit-rpc/rabbitmq4-root`) on a
   * machine whose own libc cannot run it. The node, its epmd and `rabbitmqctl` then run in
   * it with `chroot` (which needs root), the broker's folder is made inside it (`baseDir`
   * is a path inside the root, default `/tmp`), and the node reads the root's
   * `/etc/rabbitmq/conf.d/*.conf` (where `scripts/rabbitmq4.sh` puts RabbitMQ 4.3's
   * defaults). Clients connect from outside as usual. An empty string means none.
   * @default process.env.RABBITMQ_CHROOT
   */
  chroot?: string;
}

/** Options of {@link startPrivateCluster}. */
export type PrivateClusterOptions = Omit<PrivateBrokerOptions, 'amqpPort' | 'name' | 'tls'>;

const execFileAsync = promisify(execFile);

/** `'running'`, `'frozen'` (SIGSTOP), `'stopped'` (stopped or killed; `restart()` works) or `'closed'`. */
export type PrivateBrokerState = 'running' | 'frozen' | 'stopped' | 'closed';

const DEFAULT_BIN_DIR = '/usr/lib/rabbitmq/bin';

const CLUSTER_OPTION_NAMES_LIST = {
  baseDir: true,
  config: true,
  startTimeoutMs: true,
  rabbitmqBinDir: true,
  chroot: true,
} satisfies Record<keyof PrivateClusterOptions, true>;
const CLUSTER_OPTION_NAMES = optionNames(CLUSTER_OPTION_NAMES_LIST);
const BROKER_OPTION_NAMES = optionNames({
  ...CLUSTER_OPTION_NAMES_LIST,
  amqpPort: true,
  name: true,
  tls: true,
} satisfies Record<keyof PrivateBrokerOptions, true>);
const DIR_PREFIX = 'rabbit-rpc-broker-';
const STOP_TIMEOUT_MS = 30_000;

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

/**
 * One throwaway RabbitMQ node started by the tests: loopback only, its own ports, cookie,
 * epmd and data folder, so it never touches the system broker (5672, 4369, 25672,
 * /var/lib/rabbitmq). Break it as you like: `kill()`, `freeze()`, `closeAllConnections()`.
 */
export class PrivateBroker implements AsyncDisposable {
  /** `amqp://guest:guest@127.0.0.1:PORT` */
  readonly url: string;
  /** The AMQP port on 127.0.0.1. */
  readonly port: number;
  /** The Erlang distribution port. */
  readonly distPort: number;
  /** The full Erlang node name, `NAME@localhost`. */
  readonly nodeName: string;
  /**
   * This node's folder (data, logs, `rabbitmq.conf`), as this process sees it (with
   * `chroot`, inside the root); removed by `close()`.
   */
  readonly dir: string;
  /** The node's main log file, useful when a test fails. */
  readonly logFile: string;
  /** How long the last start (or restart) took until the node answered AMQP, in ms. */
  startupMs = 0;
  /** With `tls: true`: the TLS port on 127.0.0.1. */
  tlsPort: number | undefined;
  /** With `tls: true`: `amqps://guest:guest@localhost:TLS_PORT` (the certificate names localhost). */
  amqpsUrl: string | undefined;
  /** With `tls: true`: the PEM of the CA that signed the broker's certificate. */
  caPem: string | undefined;

  readonly #shared: Shared;
  readonly #ownsShared: boolean;
  readonly #env: NodeJS.ProcessEnv;
  #state: PrivateBrokerState = 'stopped';
  #wrapper: ChildProcess | undefined;
  #wrapperExit: Promise<void> = Promise.resolve();
  #beamPid: number | undefined;
  #closing: Promise<void> | undefined;

  /** @internal Use {@link startPrivateBroker} or {@link startPrivateCluster}. */
  constructor(shared: Shared, ownsShared: boolean, name: string, port: number, distPort: number) {
    this.#shared = shared;
    this.#ownsShared = ownsShared;
    this.port = port;
    this.distPort = distPort;
    this.nodeName = `${name}@localhost`;
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.dir = path.join(shared.dir, name);
    this.logFile = path.join(this.dir, 'log', `${this.nodeName}.log`);
    // The node reads these paths: inside the root, with `chroot`.
    const dir = shared.inside(this.dir);
    this.#env = {
      ...cleanEnv(),
      HOME: shared.inside(shared.dir),
      ERL_EPMD_PORT: String(shared.epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      RABBITMQ_CONF_ENV_FILE: path.join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: path.join(dir, 'rabbitmq.conf'),
      // An empty conf.d: the root's is copied into rabbitmq.conf (see prepare()).
      ...(shared.root === undefined ? {} : { RABBITMQ_CONFIG_FILES: path.join(dir, 'conf.d') }),
      RABBITMQ_ADVANCED_CONFIG_FILE: path.join(dir, 'advanced.config'),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: path.join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: path.join(dir, 'log'),
      RABBITMQ_PID_FILE: path.join(dir, 'beam.pid'),
    };
  }

  get state(): PrivateBrokerState {
    return this.#state;
  }

  /** The OS process id of the node's Erlang VM while it runs. */
  get pid(): number | undefined {
    return this.#beamPid;
  }

  /** @internal Writes the node's files (config only the first time). */
  async prepare(config: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // An empty env file: /etc/rabbitmq/rabbitmq-env.conf (the system node's) is not read.
    await writeFile(path.join(this.dir, 'rabbitmq-env.conf'), '');
    await writeFile(path.join(this.dir, 'enabled_plugins'), '[].\n');
    // listeners.tcp.1 = IP:PORT binds loopback only; `listeners.tcp.default` would bind *.
    const lines = [
      `listeners.tcp.1 = 127.0.0.1:${this.port}`,
      'log.console = false',
      // A root's own settings (scripts/rabbitmq4.sh puts 4.3's defaults there), before
      // `config`, which may override them: the node reads no conf.d of its own.
      ...(await this.#shared.rootConfig()),
      config.trim(),
    ];
    await mkdir(path.join(this.dir, 'conf.d'), { recursive: true });
    await writeFile(path.join(this.dir, 'rabbitmq.conf'), lines.filter(Boolean).join('\n') + '\n');
  }

  /** @internal Starts the node and resolves once it answers AMQP. */
  async start(): Promise<void> {
    if (this.#state === 'closed')
      throw new PrivateBrokerError('NOT_RUNNING', `${this.nodeName} is closed`);
    if (this.#state !== 'stopped') return;
    const started = Date.now();
    const stdoutLog = path.join(this.dir, 'stdout.log');
    const log = await open(stdoutLog, 'a');
    let wrapper: ChildProcess;
    try {
      const [command, args] = this.#shared.command(
        path.join(this.#shared.binDir, 'rabbitmq-server'),
        [],
      );
      wrapper = spawn(command, args, {
        stdio: ['ignore', log.fd, log.fd],
        env: this.#env,
        cwd: this.dir,
      });
    } finally {
      await log.close();
    }
    wrapper.on('error', () => undefined);
    this.#wrapper = wrapper;
    this.#wrapperExit = new Promise((resolve) => wrapper.once('exit', () => resolve()));
    this.#state = 'running';

    const deadline = started + this.#shared.startTimeoutMs;
    const exited = () => wrapper.exitCode !== null || wrapper.signalCode !== null;
    while (!(await amqpAnswers(this.port, '127.0.0.1', 1000))) {
      if (exited() || Date.now() > deadline) {
        const why = exited()
          ? `exited with ${String(wrapper.exitCode ?? wrapper.signalCode)}`
          : `did not answer AMQP within ${this.#shared.startTimeoutMs} ms`;
        const logs = `${await tail(stdoutLog)}\n${await tail(this.logFile)}`;
        await this.#halt('SIGKILL');
        throw new PrivateBrokerError(
          'START_FAILED',
          `RabbitMQ node ${this.nodeName} ${why}. Log tail:\n${logs}`,
        );
      }
      await sleep(100);
    }
    // RabbitMQ 4.x opens its TLS listener after the plain one (about 90 ms later here).
    while (this.tlsPort !== undefined && !(await portAnswers(this.tlsPort))) {
      if (exited() || Date.now() > deadline) {
        await this.#halt('SIGKILL');
        throw new PrivateBrokerError(
          'START_FAILED',
          `RabbitMQ node ${this.nodeName} did not open its TLS port ${this.tlsPort}. Log tail:\n${await tail(this.logFile)}`,
        );
      }
      await sleep(50);
    }
    this.#beamPid = await this.#readBeamPid();
    this.startupMs = Date.now() - started;
  }

  /** The node's pid file, as this process sees it. */
  get #pidFile(): string {
    return path.join(this.dir, 'beam.pid');
  }

  async #readBeamPid(): Promise<number | undefined> {
    for (let i = 0; i < 50; i++) {
      try {
        const pid = Number((await readFile(this.#pidFile, 'utf8')).trim());
        if (Number.isInteger(pid) && pid > 0) return pid;
      } catch {
        // not written yet
      }
      await sleep(100);
    }
    return undefined;
  }

  /**
   * Runs `rabbitmqctl -n NODE ...args` against this node and resolves with its stdout.
   * Each call starts an Erlang VM: about 0.5-1 s.
   * @throws PrivateBrokerError CTL_FAILED when the command fails
   */
  ctl(...args: string[]): Promise<string> {
    const [ctl, ctlArgs] = this.#shared.command(path.join(this.#shared.binDir, 'rabbitmqctl'), [
      '-n',
      this.nodeName,
      ...args,
    ]);
    return new Promise((resolve, reject) => {
      execFile(
        ctl,
        ctlArgs,
        { env: this.#env, cwd: this.#shared.dir, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) => {
          if (error) {
            reject(
              new PrivateBrokerError(
                'CTL_FAILED',
                `rabbitmqctl ${args.join(' ')} failed: ${stderr.trim() || error.message}`,
                {
                  cause: error,
                },
              ),
            );
          } else {
            resolve(stdout);
          }
        },
      );
    });
  }

  /** Closes every client connection (they get 320 CONNECTION_FORCED with `reason`). */
  async closeAllConnections(reason = 'closed by the test'): Promise<void> {
    await this.ctl('close_all_connections', reason);
  }

  /** Stops the node gracefully (SIGTERM) and waits until it has exited. Data stays for `restart()`. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'closed') return;
    await this.#halt('SIGTERM');
  }

  /** Crashes the node: SIGKILL to its Erlang VM, then waits until it is gone. */
  async kill(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'closed') return;
    await this.#halt('SIGKILL');
  }

  /** Starts the node again on the same data folder and ports (stops it first if it runs). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Freezes the node's VM (SIGSTOP): sockets stay open, nothing answers. */
  freeze(): void {
    if (this.#state !== 'running' || this.#beamPid === undefined) {
      throw new PrivateBrokerError(
        'NOT_RUNNING',
        `${this.nodeName} is ${this.#state}, it cannot be frozen`,
      );
    }
    process.kill(this.#beamPid, 'SIGSTOP');
    this.#state = 'frozen';
  }

  /** Resumes a frozen node (SIGCONT). */
  thaw(): void {
    if (this.#state !== 'frozen' || this.#beamPid === undefined) return;
    process.kill(this.#beamPid, 'SIGCONT');
    this.#state = 'running';
  }

  async #halt(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const wrapper = this.#wrapper;
    const beam = this.#beamPid;
    if (this.#state === 'frozen' && beam !== undefined) signalQuietly(beam, 'SIGCONT');
    if (signal === 'SIGKILL') {
      if (beam !== undefined) signalQuietly(beam, 'SIGKILL');
      if (wrapper?.pid !== undefined) signalQuietly(wrapper.pid, 'SIGKILL');
    } else if (wrapper?.pid !== undefined) {
      // The wrapper script turns SIGTERM into a graceful stop of the VM and waits for it.
      signalQuietly(wrapper.pid, 'SIGTERM');
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>(
      (resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)),
    );
    if (await Promise.race([this.#wrapperExit.then(() => false), timedOut])) {
      if (beam !== undefined) signalQuietly(beam, 'SIGKILL');
      if (wrapper?.pid !== undefined) signalQuietly(wrapper.pid, 'SIGKILL');
      await this.#wrapperExit;
    }
    clearTimeout(timer);
    if (beam !== undefined) await waitGone(beam);
    await rm(this.#pidFile, { force: true });
    this.#beamPid = undefined;
    this.#wrapper = undefined;
    if (this.#state !== 'closed') this.#state = 'stopped';
  }

  /**
   * Stops the node; for a standalone broker also kills its private epmd and removes its
   * folder. Idempotent; never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.stop().catch(() => this.kill());
      this.#state = 'closed';
      if (this.#ownsShared) await this.#shared.close();
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Starts a private RabbitMQ node on 127.0.0.1 and resolves once it answers AMQP (about
 * 4-7 s). Close it with `close()` (or `await using`).
 *
 * @example
 * ```ts
 * const broker = await startPrivateBroker();
 * after(() => broker.close());
 * const rpc = await connect(broker.url);
 * ```
 * @throws PrivateBrokerError NOT_INSTALLED without rabbitmq-server, START_FAILED when the node does not boot
 */
export async function startPrivateBroker(
  options: PrivateBrokerOptions = {},
): Promise<PrivateBroker> {
  checkOptionNames(options, BROKER_OPTION_NAMES, 'startPrivateBroker()');
  const shared = await Shared.create(options);
  try {
    const name = options.name ?? `rpc${randomBytes(3).toString('hex')}`;
    const port = options.amqpPort ?? (await freePort());
    const broker = new PrivateBroker(shared, true, name, port, await freePort());
    let config = options.config ?? '';
    if (options.tls) {
      const certs = await createTestCertificates(path.join(shared.dir, 'tls'));
      const tlsPort = await freePort();
      broker.tlsPort = tlsPort;
      broker.amqpsUrl = `amqps://guest:guest@localhost:${tlsPort}`;
      broker.caPem = certs.caPem;
      config = [
        `listeners.ssl.1 = 127.0.0.1:${tlsPort}`,
        `ssl_options.cacertfile = ${shared.inside(certs.caFile)}`,
        `ssl_options.certfile = ${shared.inside(certs.certFile)}`,
        `ssl_options.keyfile = ${shared.inside(certs.keyFile)}`,
        'ssl_options.verify = verify_none',
        'ssl_options.fail_if_no_peer_cert = false',
        config,
      ].join('\n');
    }
    await broker.prepare(config);
    await broker.start();
    return broker;
  } catch (error) {
    await shared.close();
    throw error;
  }
}

/** Several private nodes clustered together; see {@link startPrivateCluster}. */
export class PrivateCluster implements AsyncDisposable {
  readonly #shared: Shared;

  /** @internal Use {@link startPrivateCluster}. */
  constructor(
    readonly nodes: readonly PrivateBroker[],
    shared: Shared,
  ) {
    this.#shared = shared;
  }

  /** One AMQP URL per node, in node order. */
  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** Stops every node (in parallel), kills the private epmd, removes the folder. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.close()));
    await this.#shared.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Starts `size` private nodes that form one cluster at boot (classic_config peer
 * discovery), and resolves once all are online (about 15-25 s for 3 nodes).
 */
export async function startPrivateCluster(
  size = 3,
  options: PrivateClusterOptions = {},
): Promise<PrivateCluster> {
  checkOptionNames(options, CLUSTER_OPTION_NAMES, 'startPrivateCluster()');
  if (!Number.isInteger(size) || size < 1)
    throw new TypeError('cluster size must be a positive integer');
  const shared = await Shared.create(options);
  const nodes: PrivateBroker[] = [];
  try {
    const prefix = `rpcc${randomBytes(2).toString('hex')}n`;
    for (let i = 1; i <= size; i++) {
      nodes.push(
        new PrivateBroker(shared, false, `${prefix}${i}`, await freePort(), await freePort()),
      );
    }
    const discovery = [
      'cluster_formation.peer_discovery_backend = classic_config',
      ...nodes.map(
        (node, i) => `cluster_formation.classic_config.nodes.${i + 1} = ${node.nodeName}`,
      ),
      options.config ?? '',
    ].join('\n');
    for (const node of nodes) await node.prepare(discovery);
    const [first, ...rest] = nodes;
    if (first) await first.start();
    await Promise.all(rest.map((node) => node.start()));
    if (first) await first.ctl('await_online_nodes', String(size), '--timeout', '120');
    return new PrivateCluster(nodes, shared);
  } catch (error) {
    await Promise.all(nodes.map((node) => node.close()));
    await shared.close();
    throw error;
  }
}

/** The environment without inherited RABBITMQ_* and ERL_* variables. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('RABBITMQ_') && !key.startsWith('ERL_'))
      env[key] = value;
  }
  return env;
}

/** `file` (a path inside `root`) as this process sees it. */
function outside(root: string | undefined, file: string): string {
  return root === undefined ? file : path.join(root, file);
}

/**
 * Erlang needs /proc inside the root; mounts it when it is not (once per boot, as
 * `scripts/rabbitmq4.sh start` does). chroot needs root anyway.
 */
async function prepareRoot(root: string): Promise<void> {
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
async function findEpmdIn(root: string): Promise<string> {
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

async function findEpmd(): Promise<string> {
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

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Waits (at most 5 s) until `pid` has exited; a zombie counts as exited. */
async function waitGone(pid: number): Promise<void> {
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

async function tail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${path.basename(file)})`;
  }
}
