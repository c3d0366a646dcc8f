// `npm run check:package`: builds dist/, then checks the package as npm would publish it.
//
//   1. tsup                 the build (ESM + CJS + types, and the CLI)
//   2. closed surface       no `@internal` in the published types (.d.ts, .d.cts), no class in them
//                           that an entry point does not export, no internal type named in them
//   3. publint --strict     package.json fields, `exports`, files present in the tarball
//   4. npm pack, then attw  are-the-types-wrong on the tarball: every entry point must resolve,
//                           with the right module kind, for node10, node16 (CJS and ESM) and
//                           bundler
//   5. smoke test           the tarball, unpacked under .tmp/, loaded by `require` and by
//                           `import`: each entry point has the same exports both ways, the main
//                           entry loads no other package, the CLI starts.
//   6. patched client       the bundled @cloudamqp/amqp-client carries patches/ (its bounded
//                           table decoder), in the CommonJS and the ESM build.
//
// The tarball is packed with --ignore-scripts, so `prepare` does not build a second time.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);
// Outside the checkout: inside it, `require('rabbit-rpc')` would resolve to the checkout
// itself (package self-reference), not to the tarball.
const work = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-check-package-'));

function step(title, command, args, options = {}) {
  console.log(`check:package: ${title}`);
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', ...options });
  if (result.error) fail(`${title}: ${result.error.message}`);
  if (result.status !== 0) {
    process.stdout.write(result.stdout ?? '');
    process.stderr.write(result.stderr ?? '');
    fail(`${title} failed (exit ${String(result.status)})`);
  }
  return result.stdout;
}

function fail(message) {
  console.error(`check:package: ${message}`);
  rmSync(work, { recursive: true, force: true });
  process.exit(1);
}

/**
 * Types that are implementation, not API: none may appear in the published declarations
 * (a public signature that names one makes it public in practice).
 */
const INTERNAL_TYPES = [
  'Caller',
  'ClientStream',
  'ControlPlane',
  'ControlTarget',
  'FlowGate',
  'Link',
  'LinkParticipant',
  'MultiReply',
  'ResolvedConnectOptions',
  'ResolvedServeOptions',
];

/** The published types: nothing @internal, no class or internal type an entry does not export. */
function checkClosedSurface() {
  console.log('check:package: closed surface (the published .d.ts and .d.cts)');
  const dist = path.join(root, 'dist');
  const files = readdirSync(dist).filter((file) => /\.d\.c?ts$/.test(file));
  const text = new Map(files.map((file) => [file, readFileSync(path.join(dist, file), 'utf8')]));
  // What the entry points export, under their public names (`export { a as RpcServer }`).
  const publicNames = new Set();
  // The entry points' declaration files, from package.json `exports` (and their .d.cts twins).
  const entries = new Set(
    Object.values(pkg.exports)
      .flatMap((target) => [target?.import?.types, target?.require?.types])
      .filter((types) => typeof types === 'string')
      .map((types) => path.basename(types)),
  );
  for (const file of files.filter((name) => entries.has(name))) {
    for (const list of text.get(file).matchAll(/^export (?:type )?\{([^}]*)\}/gm)) {
      for (const item of list[1].split(',')) {
        const name = item
          .trim()
          .split(/\s+as\s+/)
          .pop()
          .replace(/^type\s+/, '');
        if (name) publicNames.add(name);
      }
    }
  }
  const problems = [];
  for (const [file, source] of text) {
    if (source.includes('@internal')) problems.push(`${file} contains @internal`);
    for (const [, name] of source.matchAll(/^declare (?:abstract )?class ([\w$]+)/gm)) {
      const base = name.replace(/\$\d+$/, '');
      if (!publicNames.has(base))
        problems.push(`${file} declares class ${base}, which no entry exports`);
    }
    for (const name of INTERNAL_TYPES) {
      if (
        new RegExp(`^(?:declare (?:abstract )?class|interface|type) ${name}\\b`, 'm').test(source)
      ) {
        problems.push(`${file} declares the internal type ${name}`);
      }
    }
  }
  if (publicNames.size === 0) problems.push('found no exports in the entry declarations');
  if (problems.length > 0) fail(`the published types are not closed:\n  ${problems.join('\n  ')}`);
}

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const subpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json');

step('build (tsup)', bin('tsup'), [], { stdio: ['ignore', 'pipe', 'pipe'] });
checkClosedSurface();
process.stdout.write(step('publint --strict', bin('publint'), ['--strict']));

const packed = JSON.parse(
  step('npm pack', 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work]),
);
const tarball = path.join(work, packed[0].filename);
process.stdout.write(
  step('attw (are the types wrong)', bin('attw'), [tarball, '--format', 'table-flipped'], {
    env: { ...process.env, FORCE_COLOR: '0' },
  }),
);

const installed = path.join(work, 'node_modules', pkg.name);
mkdirSync(installed, { recursive: true });
step('unpack', 'tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
// The dependencies and optional peers, from the checkout, next to the unpacked package.
for (const dep of [
  ...Object.keys(pkg.dependencies ?? {}),
  ...Object.keys(pkg.peerDependencies ?? {}),
]) {
  const link = path.join(work, 'node_modules', dep);
  mkdirSync(path.dirname(link), { recursive: true });
  symlinkSync(path.join(root, 'node_modules', dep), link, 'dir');
}

// Runs in `work`, where `require('rabbit-rpc')` finds the unpacked tarball.
const smoke = `
const { name, subpaths, allowed } = JSON.parse(process.env.CHECK_PACKAGE);
const problems = [];
(async () => {
  for (const sub of subpaths) {
    const id = name + sub.slice(1);
    if (!require.resolve(id).startsWith(require('node:fs').realpathSync(process.cwd())))
      problems.push(id + ' resolves outside the unpacked tarball: ' + require.resolve(id));
    const cjs = Object.keys(require(id)).sort();
    const esm = Object.keys(await import(id))
      .filter((key) => key !== 'default' && key !== 'module.exports')
      .sort();
    if (cjs.length === 0) problems.push(id + ': require() gives no exports');
    if (cjs.join() !== esm.join())
      problems.push(id + ': require() and import() differ: ' + cjs.join() + ' / ' + esm.join());
  }
  // What loading the main entry alone pulls in, seen from a fresh process.
  const fresh = require('node:child_process').spawnSync(
    process.execPath,
    ['-e', 'require(process.env.NAME); console.log(JSON.stringify(Object.keys(require.cache)))'],
    { encoding: 'utf8', env: { ...process.env, NAME: name } },
  );
  const packages = new Set();
  for (const file of JSON.parse(fresh.stdout)) {
    const at = file.lastIndexOf('node_modules/');
    if (at === -1) continue;
    const parts = file.slice(at + 'node_modules/'.length).split('/');
    packages.add(parts[0].startsWith('@') ? parts[0] + '/' + parts[1] : parts[0]);
  }
  for (const p of packages) if (!allowed.includes(p)) problems.push('the main entry loads ' + p);
  if (problems.length > 0) {
    console.error(problems.join('\\n'));
    process.exit(1);
  }
  console.log(
    'require() and import() agree on ' + subpaths.join(', ') +
      '; the main entry loads ' + [...packages].sort().join(', '),
  );
})();
`;
const config = {
  name: pkg.name,
  subpaths,
  allowed: [pkg.name, ...Object.keys(pkg.dependencies ?? {})],
};
process.stdout.write(
  step('smoke test (require and import of the tarball)', process.execPath, ['-e', smoke], {
    cwd: work,
    env: { ...process.env, CHECK_PACKAGE: JSON.stringify(config) },
  }),
);
// The AMQP client is bundled with patches/ applied (tsup.config.ts): the published code must
// carry the fix, not only node_modules of this checkout.
const PATCH_MARK = 'Field table nested deeper than';
const distFiles = readdirSync(path.join(installed, 'dist')).filter((f) => /\.(c?js)$/.test(f));
for (const kind of ['.cjs', '.js']) {
  const patched = distFiles.some(
    (f) =>
      f.endsWith(kind) &&
      readFileSync(path.join(installed, 'dist', f), 'utf8').includes(PATCH_MARK),
  );
  if (!patched) fail(`the ${kind} build does not carry the patched AMQP client (patches/)`);
}
console.log('check:package: the bundled AMQP client is patched (CJS and ESM)');
const cli = path.join(installed, pkg.bin[pkg.name]);
const version = step('CLI --version', process.execPath, [cli, '--version']).trim();
if (version !== pkg.version) fail(`the packed CLI says version ${version}, not ${pkg.version}`);

rmSync(work, { recursive: true, force: true });
console.log(`check:package: ${pkg.name}@${pkg.version} is fine (${packed[0].entryCount} files)`);
