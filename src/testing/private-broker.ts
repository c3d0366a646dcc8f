import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PrivateBrokerError } from './broker-error.js';
import { BROKER_OPTION_NAMES, type PrivateBrokerOptions } from './broker-options.js';
import { cleanEnv, signalQuietly, tail, waitGone } from './broker-process.js';
import { Shared } from './broker-shared.js';
import { amqpAnswers, freePort, portAnswers } from './ports.js';
import { createTestCertificates } from './tls.js';
import { checkOptionNames } from '../option-names.js';

/** `'running'`, `'frozen'` (SIGSTOP), `'stopped'` (stopped or killed; `restart()` works) or `'closed'`. */
export type PrivateBrokerState = 'running' | 'frozen' | 'stopped' | 'closed';

const STOP_TIMEOUT_MS = 30_000;

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
