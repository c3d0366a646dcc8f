// Runs the NestJS suite (test/nestjs) against another major of Nest than the pinned
// devDependencies (Nest 11): by default Nest 12, the other major the peer range allows.
//
//   node scripts/nest-compat.mjs [12]        AMQP_URL as for scripts/test.mjs (default localhost)
//
// It typechecks src/nestjs and the test app against that major's declarations, then runs
// the suite on the broker.
//
// Node resolves packages from the importing file's folder upwards, so the sources and tests
// are copied into .tmp/nest<major>/, next to a node_modules holding only the Nest packages
// of that major (installed there with --no-save); everything else (tsx, zod, amqplib,
// class-validator, ...) still comes from the checkout's node_modules, one folder up.
// Symlinks would not do: Node resolves from a module's real path.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const major = process.argv[2] ?? '12';
const PACKAGES = {
  12: [
    '@nestjs/common@12.6.3',
    '@nestjs/core@12.6.3',
    '@nestjs/microservices@12.1.1',
    '@nestjs/platform-express@12.6.3',
    '@nestjs/config@12.0.1',
  ],
  11: [
    '@nestjs/common@11.2.12',
    '@nestjs/core@11.2.12',
    '@nestjs/microservices@11.2.6',
    '@nestjs/platform-express@11.2.12',
    '@nestjs/config@12.0.1',
  ],
};
const wanted = PACKAGES[major];
if (!wanted) {
  console.error(
    `scripts/nest-compat.mjs: no package list for Nest ${major} (have ${Object.keys(PACKAGES)})`,
  );
  process.exit(2);
}
const work = path.join(root, '.tmp', `nest${major}`);
const started = Date.now();

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: work, stdio: 'inherit', ...options });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// Install once; a later run with the same list reuses it.
const stamp = path.join(work, 'node_modules', '.nest-compat');
if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== wanted.join('\n')) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  writeFileSync(
    path.join(work, 'package.json'),
    JSON.stringify({ name: `nest${major}-compat`, private: true, type: 'module' }, null, 2),
  );
  console.log(`== nest-compat: npm install ${wanted.join(' ')}`);
  // --legacy-peer-deps: the peers (rxjs, reflect-metadata, amqplib, ...) come from the
  // checkout, as in an application that installs them itself.
  run('npm', [
    'install',
    '--no-save',
    '--no-package-lock',
    '--no-audit',
    '--no-fund',
    '--legacy-peer-deps',
    ...wanted,
  ]);
  writeFileSync(stamp, wanted.join('\n'));
}

// The example test runs the CLI (dist/cli.js), which npm test builds; build it if missing.
if (!existsSync(path.join(root, 'dist', 'cli.js'))) {
  run(path.join(root, 'node_modules', '.bin', 'tsup'), ['--silent'], { cwd: root });
}

// Fresh copies of what the tests run (examples/nestjs and dist/cli.js for the example test).
for (const dir of ['src', 'test', 'scripts', 'examples', 'dist']) {
  rmSync(path.join(work, dir), { recursive: true, force: true });
}
cpSync(path.join(root, 'src'), path.join(work, 'src'), { recursive: true });
cpSync(path.join(root, 'examples'), path.join(work, 'examples'), { recursive: true });
cpSync(path.join(root, 'dist'), path.join(work, 'dist'), { recursive: true });
cpSync(path.join(root, 'test', 'helpers.ts'), path.join(work, 'test', 'helpers.ts'));
cpSync(path.join(root, 'test', 'nestjs'), path.join(work, 'test', 'nestjs'), { recursive: true });
for (const file of ['nest-decorators.mjs', 'nest-decorators-hooks.mjs']) {
  cpSync(path.join(root, 'scripts', file), path.join(work, 'scripts', file));
}
cpSync(path.join(root, 'tsconfig.json'), path.join(work, 'tsconfig.json'));

const versions = ['common', 'core', 'microservices']
  .map((name) => {
    const file = path.join(work, 'node_modules', '@nestjs', name, 'package.json');
    return `@nestjs/${name}@${JSON.parse(readFileSync(file, 'utf8')).version}`;
  })
  .join(', ');
console.log(`== nest-compat: ${versions} (setup ${Date.now() - started} ms)`);

// The types: src/nestjs and the test app against this major's declarations.
console.log('== nest-compat: tsc -p test/nestjs, tsc -p examples/nestjs');
run(path.join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', 'test/nestjs']);
run(path.join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', 'examples/nestjs']);

// main-entry.test.ts checks the built dist/ of the checkout: nothing of Nest's version.
const files = readdirSync(path.join(work, 'test', 'nestjs'))
  .filter((name) => name.endsWith('.test.ts') && name !== 'main-entry.test.ts')
  .sort()
  .map((name) => path.join('test', 'nestjs', name));
const args = ['--import', 'tsx', '--import', './scripts/nest-decorators.mjs', '--test'];
args.push('--test-concurrency=2', '--test-timeout=120000');
if (process.env.CI || !process.stdout.isTTY) args.push('--test-reporter=tap');
run(process.execPath, [...args, ...files], {
  env: { ...process.env, AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@localhost:5672' },
});
console.log(
  `== nest-compat: Nest ${major} passed in ${Math.round((Date.now() - started) / 1000)} s`,
);
