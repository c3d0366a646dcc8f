import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../scripts/check-imports.mjs', import.meta.url));
const trees: string[] = [];
after(() => {
  for (const tree of trees) rmSync(tree, { recursive: true, force: true });
});

/** Runs the checker on a tree of files (path → source) and returns its exit code and output. */
function check(files: Record<string, string>): { status: number | null; output: string } {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-check-imports-'));
  trees.push(tree);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(tree, file)), { recursive: true });
    writeFileSync(path.join(tree, file), text);
  }
  const run = spawnSync(process.execPath, [script, tree], { encoding: 'utf8' });
  return { status: run.status, output: run.stdout + run.stderr };
}

test('the real src/ passes', () => {
  const run = spawnSync(process.execPath, [script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
});

test('a cycle made only of type imports fails, named file by file', () => {
  const { status, output } = check({
    'errors.ts': 'export class RpcError extends Error {}\n',
    'client/a.ts': "import type { B } from './b.js';\nexport interface A { b: B }\n",
    'client/b.ts': "import type { A } from './a.js';\nexport interface B { a: A }\n",
  });
  assert.equal(status, 1);
  assert.match(output, /import cycle: client\/a\.ts -> client\/b\.ts -> client\/a\.ts/);
});

test('client/ and server/ never import each other, not even types', () => {
  const { status, output } = check({
    'client/caller.ts': "import type { S } from '../server/server.js';\nexport type C = S;\n",
    'server/server.ts': 'export type S = number;\n',
  });
  assert.equal(status, 1);
  assert.match(
    output,
    /client\/caller\.ts: imports \.\.\/server\/server\.js: client\/ never imports server\//,
  );
});

test('options/ is a leaf: a runtime import of transport/ fails, a type import of its seam passes', () => {
  const seam = 'export interface AmqpClientLike { closed: boolean }\n';
  const runtime = check({
    'transport/types.ts': seam,
    'transport/amqp-client.ts': 'export function openAmqp(): void {}\n',
    'options/connect.ts':
      "import { openAmqp } from '../transport/amqp-client.js';\nexport const o = openAmqp;\n",
  });
  assert.equal(runtime.status, 1);
  assert.match(runtime.output, /options\/connect\.ts: imports \.\.\/transport\/amqp-client\.js/);
  const typeOnly = check({
    'transport/types.ts': seam,
    'options/connect.ts':
      "import type { AmqpClientLike } from '../transport/types.js';\nexport type T = AmqpClientLike;\n",
  });
  assert.equal(typeOnly.status, 0, typeOnly.output);
});

test('only transport/ imports the AMQP library', () => {
  const { status, output } = check({
    'server/server.ts':
      "import { AMQPClient } from '@cloudamqp/amqp-client';\nexport const c = AMQPClient;\n",
  });
  assert.equal(status, 1);
  assert.match(output, /server\/server\.ts: only transport\/ imports @cloudamqp\/amqp-client/);
});

test('cli/ goes through the public entry points only', () => {
  const files = {
    'index.ts': "export { connect } from './connection.js';\n",
    'connection.ts': 'export function connect(): void {}\n',
    'cli/main.ts': "import { connect } from '../index.js';\nexport const c = connect;\n",
  };
  assert.equal(check(files).status, 0);
  const { status, output } = check({
    ...files,
    'cli/main.ts': "import { connect } from '../connection.js';\nexport const c = connect;\n",
  });
  assert.equal(status, 1);
  assert.match(output, /cli\/ uses only the public entry points/);
});

test('the kernel imports nothing outside the kernel, and a new top-level file needs a folder', () => {
  const { status, output } = check({
    'errors.ts': "import type { X } from './client/x.js';\nexport type E = X;\n",
    'client/x.ts': 'export type X = 1;\n',
    'newthing.ts': 'export {};\n',
  });
  assert.equal(status, 1);
  assert.match(
    output,
    /errors\.ts: imports \.\/client\/x\.js: the kernel imports nothing outside the kernel/,
  );
  assert.match(output, /newthing\.ts: a new file at the top of src\/ goes in a folder/);
});
