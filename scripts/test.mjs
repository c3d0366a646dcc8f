// The test runner behind `npm test` (after typecheck and lint).
//
//   node scripts/test.mjs                      build, find a broker, run every test suite
//   node scripts/test.mjs --only unit,faults   run some suites only (names below)
//   node scripts/test.mjs --no-build FILE...   run given test files without rebuilding dist
//   node scripts/test.mjs --private-broker     use a private node even if 5672 answers
//   node scripts/test.mjs --only slow          the slow fault tests (test/slow), which the
//                                              default run leaves out (npm run test:slow)
//   node scripts/test.mjs --rabbitmq4 [FILE...] only the RabbitMQ 4.x pass (below)
//   node scripts/test.mjs --no-rabbitmq4       only the pass on the main broker
//
// Broker for the integration suites: AMQP_URL if set; else the broker on 127.0.0.1:5672 if
// one answers; else a private RabbitMQ node started here (and stopped at the end). The
// faults and testing suites always start their own private nodes.
//
// Then the RabbitMQ 4.x pass: the integration, interop, contract, faults, cli, otel, fuzz,
// nestjs and ui suites, and the 4.x-only rabbitmq4 suite, run again against RabbitMQ 4.x:
// RABBITMQ4_URL if set, else the node of scripts/rabbitmq4.sh if it answers on 127.0.0.1:5682. Its faults suite starts
// private nodes from the same root (RABBITMQ4_ROOT, default /var/lib/rabbit-rpc/rabbitmq4-root,
// through rabbit-rpc/testing's `chroot` option). Without a 4.x node the pass is left out
// with a line saying how to start one; with RABBITMQ4_URL set, a missing node fails the run.
// Each pass ends with node's test runner summary (`# pass N`, `# fail N`).
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { describeLeftovers, findLeftovers } from './leftovers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SUITES = [
  'unit',
  'integration',
  'cli',
  'interop',
  'contract',
  'faults',
  'testing',
  'otel',
  'memory',
  'fuzz',
  'nestjs',
  'ui',
  'slow',
  'rabbitmq4',
];
/** Run only when asked for by name (`--only slow`): broker restarts, users and permissions. */
const OPT_IN_SUITES = new Set(['slow', 'rabbitmq4']);
/** Suites that use the shared broker through AMQP_URL. */
const BROKER_SUITES = new Set([
  'integration',
  'cli',
  'interop',
  'contract',
  'otel',
  'fuzz',
  'nestjs',
  // rabbit-rpc ui: its API and its page in headless Chromium.
  'ui',
]);
/** Suites run again against RabbitMQ 4.x; `rabbitmq4` runs only there. */
const RABBITMQ4_SUITES = new Set([
  'integration',
  'interop',
  'contract',
  'faults',
  'cli',
  'otel',
  'fuzz',
  'nestjs',
  'ui',
  'rabbitmq4',
]);
const RABBITMQ4_DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5682';
const RABBITMQ4_ROOT = process.env.RABBITMQ4_ROOT ?? '/var/lib/rabbit-rpc/rabbitmq4-root';
const HOW_TO_GET_RABBITMQ4 =
  'start one with: sudo bash scripts/rabbitmq4.sh start   (builds a Debian 13 root with ' +
  "RabbitMQ 4.0.5 once, about 75 s, and runs it on 127.0.0.1:5682 with 4.3's defaults), " +
  'or set RABBITMQ4_URL';
/** Suites that start private brokers themselves (they need rabbitmq-server installed). */
const PRIVATE_BROKER_SUITES = new Set(['faults', 'testing', 'otel', 'slow']);
const DEFAULT_URL = 'amqp://guest:guest@localhost:5672';
const TEST_TIMEOUT_MS = 120_000;
/**
 * The slow suite's files each start a private broker (or a cluster) and reconfigure it with
 * rabbitmqctl, 1-3 s a call on a loaded machine: they get more time.
 */
const SLOW_TEST_TIMEOUT_MS = 600_000;
const RABBITMQ_BIN_DIR = process.env.RABBITMQ_BIN_DIR ?? '/usr/lib/rabbitmq/bin';

function usage(message) {
  if (message) console.error(`scripts/test.mjs: ${message}`);
  console.error(
    `usage: node scripts/test.mjs [--only ${SUITES.join(',')}] [--no-build] [--private-broker] ` +
      `[--rabbitmq4 | --no-rabbitmq4] [test files...]`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const only = new Set();
  const files = [];
  let build = true;
  let privateBroker = false;
  /** 'both' (default), 'only' (--rabbitmq4) or 'none' (--no-rabbitmq4). */
  let rabbitmq4 = 'both';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') usage();
    else if (arg === '--no-build') build = false;
    else if (arg === '--rabbitmq4') rabbitmq4 = 'only';
    else if (arg === '--no-rabbitmq4') rabbitmq4 = 'none';
    else if (arg === '--private-broker') privateBroker = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      if (!value) usage('--only needs suite names');
      for (const name of value.split(',')) {
        if (!SUITES.includes(name)) usage(`unknown suite "${name}"`);
        only.add(name);
      }
    } else if (arg.startsWith('-')) usage(`unknown option ${arg}`);
    else files.push(arg);
  }
  return { only, files, build, privateBroker, rabbitmq4 };
}

/** test/<suite>/*.test.ts for each suite, sorted; suites without a folder are skipped. */
function findTestFiles(suites) {
  const files = [];
  for (const suite of suites) {
    const dir = path.join(root, 'test', suite);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      if (name.endsWith('.test.ts')) files.push(path.join('test', suite, name));
    }
  }
  return files;
}

function run(command, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', ...options });
    child.on('error', (error) => {
      console.error(`scripts/test.mjs: could not run ${command}: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/** True when an AMQP broker answers on host:port (it sends connection.start). */
function amqpAnswers(port, host = '127.0.0.1', timeoutMs = 1500) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (answered) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => socket.write(Buffer.from('AMQP\x00\x00\x09\x01', 'latin1')));
    socket.once('data', (data) => done(data[0] === 1));
    socket.once('end', () => done(false));
    socket.once('error', () => done(false));
  });
}

const rabbitInstalled = () => existsSync(path.join(RABBITMQ_BIN_DIR, 'rabbitmq-server'));

const HOW_TO_GET_A_BROKER = [
  'The integration tests need RabbitMQ. Either:',
  '  - install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server); this script then starts',
  '    a private throwaway node by itself (the system service need not run), or',
  '  - start one on 127.0.0.1:5672 (sudo systemctl start rabbitmq-server, or',
  '    docker run -d -p 5672:5672 rabbitmq:3), or',
  '  - point AMQP_URL at a broker you may use for tests (amqp://user:pass@host:5672/vhost).',
].join('\n');

/** Finds or starts the broker for the integration suites; returns its URL and a stop function. */
async function ensureBroker(forcePrivate) {
  if (forcePrivate) {
    if (!rabbitInstalled()) {
      console.error(
        `--private-broker: ${RABBITMQ_BIN_DIR}/rabbitmq-server is missing.\n\n${HOW_TO_GET_A_BROKER}`,
      );
      process.exit(1);
    }
  } else if (process.env.AMQP_URL) {
    console.log(`== broker: AMQP_URL from the environment`);
    return { url: process.env.AMQP_URL, stop: async () => undefined };
  } else if (await amqpAnswers(5672)) {
    console.log(`== broker: the one answering on 127.0.0.1:5672 (${DEFAULT_URL})`);
    return { url: DEFAULT_URL, stop: async () => undefined };
  } else if (!rabbitInstalled()) {
    console.error(
      `No AMQP broker answers on 127.0.0.1:5672, AMQP_URL is not set, and rabbitmq-server`,
    );
    console.error(`is not installed (${RABBITMQ_BIN_DIR}/rabbitmq-server is missing).\n`);
    console.error(HOW_TO_GET_A_BROKER);
    process.exit(1);
  }
  const { tsImport } = await import('tsx/esm/api');
  const { startPrivateBroker } = await tsImport('../src/testing/index.ts', import.meta.url);
  const broker = await startPrivateBroker();
  console.log(
    `== broker: ${forcePrivate ? '--private-broker given' : 'none on 127.0.0.1:5672 and AMQP_URL is not set'}, ` +
      `so started a private RabbitMQ node at ${broker.url} in ${broker.startupMs} ms; ` +
      `it is stopped when the tests end`,
  );
  return { url: broker.url, stop: () => broker.close() };
}

const suiteOf = (file) => path.relative(root, path.resolve(root, file)).split(path.sep)[1];

/** The URL of a RabbitMQ 4.x node for the 4.x pass, or undefined (with the reason printed). */
async function findRabbitmq4() {
  if (process.env.RABBITMQ4_URL) {
    const url = new URL(process.env.RABBITMQ4_URL);
    if (await amqpAnswers(Number(url.port || 5672), url.hostname)) return url.toString();
    console.error(`RABBITMQ4_URL is set but nothing answers AMQP there; ${HOW_TO_GET_RABBITMQ4}`);
    process.exit(1);
  }
  if (await amqpAnswers(5682)) return RABBITMQ4_DEFAULT_URL;
  console.log(
    `== RabbitMQ 4.x pass left out: no node answers on 127.0.0.1:5682 and RABBITMQ4_URL is ` +
      `not set; ${HOW_TO_GET_RABBITMQ4}`,
  );
  return undefined;
}

/** Runs `files` under node's test runner with `env`; resolves with its exit code. */
/**
 * Runs test files with node's test runner. With `leftoversUrl`, every queue the tests create
 * carries a run id and is listed in a ledger, and the run fails if any is left on that broker
 * afterwards (scripts/leftovers.mjs).
 */
async function runTests(files, env, concurrency, timeoutMs, leftoversUrl) {
  const args = [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    `--test-timeout=${timeoutMs}`,
  ];
  // Nest's DI reads decorator metadata, which tsx does not emit: TypeScript compiles the
  // Nest test apps (scripts/nest-decorators.mjs).
  if (files.some((file) => suiteOf(file) === 'nestjs'))
    args.push('--import', './scripts/nest-decorators.mjs');
  // CI reads the TAP summary (`# pass N`); a terminal gets node's default (spec) output.
  if (process.env.CI || !process.stdout.isTTY) args.push('--test-reporter=tap');
  args.push(...files);
  const runId = `r${randomBytes(4).toString('hex')}`;
  const ledgerDir = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-test-ledger-'));
  const ledger = path.join(ledgerDir, 'created');
  let code = await run(process.execPath, args, {
    env: { ...env, RABBIT_RPC_TEST_RUN: runId, RABBIT_RPC_TEST_LEDGER: ledger },
  });
  if (leftoversUrl) {
    const found = await findLeftovers({
      url: leftoversUrl,
      runId,
      ledger,
      rabbitmqctl: 'rabbitmqctl',
    }).catch((error) => {
      console.error(`scripts/test.mjs: the check for leftovers failed: ${error}`);
      return { how: 'nothing', queues: [`(unchecked: ${error})`], exchanges: [] };
    });
    const report = describeLeftovers(found);
    if (report === '') console.log(`== leftovers: none (run ${runId}, checked with ${found.how})`);
    else {
      console.error(report);
      if (code === 0) code = 1;
    }
  }
  rmSync(ledgerDir, { recursive: true, force: true });
  return code;
}

async function main() {
  const started = Date.now();
  const {
    only,
    files: explicitFiles,
    build,
    privateBroker,
    rabbitmq4,
  } = parseArgs(process.argv.slice(2));
  const suites =
    only.size > 0
      ? SUITES.filter((suite) => only.has(suite))
      : SUITES.filter((suite) => !OPT_IN_SUITES.has(suite));
  const selected = explicitFiles.length > 0 ? explicitFiles : findTestFiles(suites);
  // The 4.x pass: the selection's files of the RabbitMQ 4.x suites, with the 4.x-only suite.
  const rabbitmq4Files =
    rabbitmq4 === 'none' ? [] : selected.filter((file) => RABBITMQ4_SUITES.has(suiteOf(file)));
  if (explicitFiles.length === 0 && rabbitmq4Files.length > 0 && !only.has('rabbitmq4')) {
    rabbitmq4Files.push(...findTestFiles(['rabbitmq4']));
  }
  const files =
    rabbitmq4 === 'only' ? [] : selected.filter((file) => suiteOf(file) !== 'rabbitmq4');
  if (files.length === 0 && rabbitmq4Files.length === 0) usage('no test files found');
  const suitesInUse = new Set(files.map(suiteOf));

  // The tests load @cloudamqp/amqp-client from node_modules: with patches/ applied, as the
  // build bundles it (a no-op when it is already patched).
  if ((await run(process.execPath, ['scripts/patch-deps.mjs'])) !== 0) process.exit(1);

  if (build) {
    console.log('== build: npx tsup (the CLI tests run dist/cli.js)');
    const code = await run(process.platform === 'win32' ? 'npx.cmd' : 'npx', ['tsup', '--silent']);
    if (code !== 0) {
      console.error('scripts/test.mjs: the build failed');
      process.exit(code);
    }
  }

  const privateBrokerSuites = [...suitesInUse].filter((suite) => PRIVATE_BROKER_SUITES.has(suite));
  if (privateBrokerSuites.length > 0 && !rabbitInstalled()) {
    console.error(
      `warning: the ${privateBrokerSuites.join(' and ')} suites start private RabbitMQ nodes, but ` +
        `${RABBITMQ_BIN_DIR}/rabbitmq-server is missing: they will fail.\n${HOW_TO_GET_A_BROKER}`,
    );
  }

  const explicitUnknown =
    explicitFiles.length > 0 && [...suitesInUse].some((suite) => !SUITES.includes(suite));
  const needsBroker = explicitUnknown || [...suitesInUse].some((suite) => BROKER_SUITES.has(suite));
  const broker =
    files.length > 0 && (needsBroker || privateBroker)
      ? await ensureBroker(privateBroker)
      : { url: process.env.AMQP_URL, stop: async () => undefined };

  let stopping = false;
  const stopBroker = async () => {
    if (stopping) return;
    stopping = true;
    await broker
      .stop()
      .catch((error) => console.error(`scripts/test.mjs: stopping the broker failed: ${error}`));
  };
  // Ctrl-C reaches the test runner too; wait for it, then stop the broker we started.
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      void stopBroker().then(() => process.exit(130));
    });
  }

  const concurrency = Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length));
  const timeoutMs = suitesInUse.has('slow') ? SLOW_TEST_TIMEOUT_MS : TEST_TIMEOUT_MS;
  let code = 0;
  if (files.length > 0) {
    const env = { ...process.env };
    if (broker.url) env.AMQP_URL = broker.url;
    console.log(
      `== tests: ${files.length} files (${[...suitesInUse].join(', ')}), concurrency ${concurrency}, ` +
        `timeout ${timeoutMs / 1000} s per test; setup took ${Date.now() - started} ms`,
    );
    code = await runTests(files, env, concurrency, timeoutMs, needsBroker ? broker.url : undefined);
  }
  await stopBroker();
  if (rabbitmq4Files.length > 0) {
    const url4 = await findRabbitmq4();
    if (url4 !== undefined)
      code = (await runRabbitmq4Pass(rabbitmq4Files, url4, concurrency)) || code;
  }
  process.exit(code);
}

/** The 4.x pass: `files` against the 4.x node at `url`, private nodes from RABBITMQ4_ROOT. */
async function runRabbitmq4Pass(files, url, concurrency) {
  const started = Date.now();
  const env = { ...process.env, AMQP_URL: url };
  const haveRoot = existsSync(path.join(RABBITMQ4_ROOT, 'usr/lib/rabbitmq/bin/rabbitmq-server'));
  let run4 = files;
  if (haveRoot) {
    env.RABBITMQ_CHROOT = RABBITMQ4_ROOT;
  } else {
    // Private 4.x nodes need the root; the suites that start them cannot run without it.
    run4 = files.filter(
      (file) => !PRIVATE_BROKER_SUITES.has(suiteOf(file)) && suiteOf(file) !== 'rabbitmq4',
    );
    console.log(
      `== RabbitMQ 4.x: no root at ${RABBITMQ4_ROOT} for private 4.x nodes, so the faults and ` +
        `rabbitmq4 suites are left out of this pass (sudo bash scripts/rabbitmq4.sh build)`,
    );
  }
  if (run4.length === 0) return 0;
  const suites = [...new Set(run4.map(suiteOf))];
  console.log(
    `== RabbitMQ 4.x pass: ${run4.length} files (${suites.join(', ')}) against ` +
      `${url.replace(/\/\/[^@/]*@/, '//')}${haveRoot ? `, private nodes from ${RABBITMQ4_ROOT}` : ''}`,
  );
  const code = await runTests(run4, env, concurrency, TEST_TIMEOUT_MS, url);
  console.log(`== RabbitMQ 4.x pass: exit ${code} after ${Date.now() - started} ms`);
  return code;
}

main().catch((error) => {
  console.error('scripts/test.mjs:', error);
  process.exit(1);
});
