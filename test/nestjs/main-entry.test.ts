// The main entry never loads Nest: 'rabbit-rpc' works in an app without the optional peers,
// and the built dist/index.* names none of them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

const NEST = /@nestjs\/|\brxjs\b|reflect-metadata/;

function run(code: string): { status: number | null; output: string } {
  const register = `data:text/javascript,import{register}from'node:module';register('./test/nestjs/fixtures/no-nest-hooks.mjs',new URL('file://${process.cwd()}/'))`;
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--import', register, '--input-type=module', '-e', code],
    {
      encoding: 'utf8',
    },
  );
  return { status: result.status, output: result.stdout + result.stderr };
}

test('with Nest absent, the main entry loads and connects; rabbit-rpc/nestjs says what is missing', () => {
  const main = run(
    "const m = await import('./src/index.ts'); const rpc = await m.connect(process.env.AMQP_URL); await rpc.close(); console.log('main ok');",
  );
  assert.equal(main.status, 0, main.output);
  assert.match(main.output, /main ok/);
  const nest = run("await import('./src/nestjs/index.ts')");
  assert.notEqual(nest.status, 0);
  assert.match(nest.output, /Cannot find package '@nestjs\//);
});

test('the built main entry (ESM and CJS) imports nothing of Nest', () => {
  for (const file of ['dist/index.js', 'dist/index.cjs']) {
    assert.ok(existsSync(file), `${file} is missing: npm run build`);
    const imports =
      readFileSync(file, 'utf8').match(/(?:from\s*|require\(|import\()\s*["'][^"']+["']/g) ?? [];
    assert.deepEqual(
      imports.filter((line) => NEST.test(line)),
      [],
      file,
    );
  }
});
