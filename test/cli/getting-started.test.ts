// docs/guides/getting-started.md, run as written: its commands in projects made by
// `npm init -y` (an ES module one and a CommonJS one), its files as they are, against the
// test broker. So the guide cannot drift from the package.
//
// The guide marks what the test runs with its code blocks' info strings:
//   ```sh setup=esm            commands run in that project, in order (mkdir/cd excepted)
//   ```ts file=x.ts project=esm,cjs   a file of those projects
//   ```text output=client      what a program prints
// Offline and fast: `npm install ../rabbit-rpc/rabbit-rpc-0.1.0.tgz` (or `rabbit-rpc`)
// installs a tarball packed from this checkout, and every other package is installed at the
// version of this checkout's package-lock.json, from npm's cache (--prefer-offline).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AMQP_URL, deleteAtExit } from '../helpers.js';
import { ROOT, requireBuiltCli } from './child.js';

const GUIDE = readFileSync(path.join(ROOT, 'docs/guides/getting-started.md'), 'utf8');
const LOCK = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version?: string }>;
};

interface Block {
  readonly lang: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly body: string;
}

function blocks(): Block[] {
  const found: Block[] = [];
  for (const match of GUIDE.matchAll(/^```(\w*)([^\n]*)\n([\s\S]*?)^```$/gm)) {
    const attrs: Record<string, string> = {};
    for (const pair of (match[2] ?? '').trim().split(/\s+/)) {
      const [key, value] = pair.split('=');
      if (key && value !== undefined) attrs[key] = value;
    }
    found.push({ lang: match[1] ?? '', attrs, body: match[3] ?? '' });
  }
  return found;
}

const BLOCKS = blocks();
const inProject = (block: Block, project: string) =>
  (block.attrs['project'] ?? '').split(',').includes(project);

function output(name: string): string {
  const block = BLOCKS.find((candidate) => candidate.attrs['output'] === name);
  assert.ok(block, `the guide shows no output=${name}`);
  return block.body;
}

/** The environment of a user's shell: none of the npm_* variables `npm test` sets. */
function userEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.toLowerCase().startsWith('npm_')) env[key] = value;
  }
  return { ...env, AMQP_URL, NO_COLOR: '1', npm_config_update_notifier: 'false' };
}

/** Runs a command to its end in `cwd`; rejects with its output unless it exits 0. */
function run(command: string, args: readonly string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else
        reject(
          new Error(`${command} ${args.join(' ')} (in ${cwd}) exited ${String(code)}:\n${out}`),
        );
    });
  });
}

/** A guide's `npm install` line, made offline: the tarball for rabbit-rpc, locked versions else. */
function offlineInstall(args: readonly string[], tarball: string): string[] {
  const mapped = args.map((arg, index) => {
    if (index === 0 || arg.startsWith('-')) return arg; // install, --save-dev
    if (arg === 'rabbit-rpc' || arg.endsWith('.tgz')) return tarball;
    const version = LOCK.packages[`node_modules/${arg}`]?.version;
    assert.ok(version, `${arg} is not in package-lock.json: the test cannot install it offline`);
    return `${arg}@${version}`;
  });
  return [...mapped, '--prefer-offline', '--no-audit', '--no-fund'];
}

async function setUp(project: string, dir: string, tarball: string): Promise<void> {
  const setup = BLOCKS.filter((block) => block.attrs['setup'] === project);
  assert.ok(setup.length > 0, `the guide has no setup=${project} commands`);
  for (const line of setup.flatMap((block) => block.body.split('\n'))) {
    const words = line.trim().split(/\s+/);
    if (words[0] === 'mkdir' || words[0] === '') continue; // the test made the folder
    assert.equal(words[0], 'npm', `a setup command the test does not know: ${line}`);
    const args = words.slice(1);
    await run('npm', args[0] === 'install' ? offlineInstall(args, tarball) : args, dir);
  }
  for (const block of BLOCKS.filter((candidate) => inProject(candidate, project))) {
    const file = block.attrs['file'];
    assert.ok(file, 'a block with project= needs file=');
    writeFileSync(path.join(dir, file), block.body);
  }
}

/** A server started as from a shell: its own process group, which Ctrl-C signals. */
interface Server {
  readonly child: ChildProcess;
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
}

/** Starts `npx ...args` (a server) in `dir` and waits until it says it serves. */
async function startServer(dir: string, args: readonly string[]): Promise<Server> {
  const child = spawn('npx', args, {
    cwd: dir,
    env: userEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('close', (code, signal) => resolve([code, signal]));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (/^serving "\w+"; Ctrl-C to stop$/m.test(out)) resolve();
    });
    void exited.then(([code]) => reject(new Error(`the server exited (${String(code)}):\n${out}`)));
  });
  return { child, exited };
}

/**
 * Ctrl-C, as a terminal sends it: SIGINT to the whole process group (npx does not pass a
 * SIGINT of its own on to the program). The server closes and exits by itself, 0; npm
 * itself may end by the signal, as it does in a terminal.
 */
async function stopServer(server: Server): Promise<void> {
  process.kill(-(server.child.pid as number), 'SIGINT');
  const timer = setTimeout(() => process.kill(-(server.child.pid as number), 'SIGKILL'), 20_000);
  const [code, signal] = await server.exited;
  clearTimeout(timer);
  assert.ok(code === 0 || signal === 'SIGINT', `Ctrl-C: exit ${String(code)}, ${String(signal)}`);
}

let work: string;
let tarball: string;
const dirs: Record<string, string> = {};

before(async () => {
  requireBuiltCli();
  // The guide's queues, on the shared broker: removed when this file ends.
  deleteAtExit('greeter');
  deleteAtExit('rpc.users');
  work = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-guide-'));
  const packed = JSON.parse(
    await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT),
  ) as Array<{ filename: string }>;
  tarball = path.join(work, packed[0]?.filename ?? '');
  // Both projects install at once; they run one after the other (same queue names).
  await Promise.all(
    ['esm', 'cjs'].map(async (project) => {
      const dir = path.join(work, `hello-rpc-${project}`);
      mkdirSync(dir);
      dirs[project] = dir;
      await setUp(project, dir, tarball);
    }),
  );
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('docs/guides/getting-started.md, as written', () => {
  test('the guide runs the commands this test runs', () => {
    for (const command of [
      'npx tsx server.ts',
      'npx tsx client.ts',
      'npx tsc',
      'node dist/client.js',
    ]) {
      assert.ok(GUIDE.includes(command), `the guide no longer says ${command}`);
    }
  });

  for (const project of ['esm', 'cjs']) {
    test(`${project}: npm init -y, the guide's package.json, tsx, tsc and node`, async () => {
      const dir = dirs[project] as string;
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        type?: string;
      };
      assert.equal(manifest.type === 'module', project === 'esm');
      const server = await startServer(dir, ['tsx', 'server.ts']);
      try {
        assert.equal(await run('npx', ['tsx', 'client.ts'], dir), output('client'));
        // Compiled by the project's TypeScript with the guide's tsconfig, then run by node.
        await run('npx', ['tsc'], dir);
        assert.equal(await run('node', ['dist/client.js'], dir), output('client'));
      } finally {
        await stopServer(server);
      }
    });
  }

  test('esm: the typed contract with zod', async () => {
    const dir = dirs['esm'] as string;
    const server = await startServer(dir, ['tsx', 'users-server.ts']);
    try {
      assert.equal(await run('npx', ['tsx', 'users-client.ts'], dir), output('users-client'));
    } finally {
      await stopServer(server);
    }
  });
});
