// Applies patches/*.patch to the installed dependency they name, until upstream releases
// the fix (patches/README.md says what each fixes). Runs from `npm ci` (prepare), from the
// build (tsup.config.ts, which bundles the patched code into dist/ so that users who install
// rabbit-rpc from npm run it too) and from scripts/test.mjs. Idempotent and cheap when the
// patch is already in place.
//
// A patch is written against the package's TypeScript sources (src/), as it would be
// offered upstream; this script then rebuilds the JavaScript that Node loads (lib/mjs and
// lib/cjs) from the patched sources, with esbuild, for the files the patch touches.
//
//   node scripts/patch-deps.mjs           apply (or re-apply after a patch change)
//   node scripts/patch-deps.mjs --check   exit 1 unless the installed package is patched
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const patchesDir = path.join(root, 'patches');
/** Marks a patched package: the patch's hash. */
const MARKER = '.rabbit-rpc-patch';
/** The package's files as installed, kept to re-apply a changed patch. */
const PRISTINE = '.rabbit-rpc-pristine';

function fail(message) {
  console.error(`patch-deps: ${message}`);
  process.exit(1);
}

/** `@scope+name+1.2.3.patch` → { name: '@scope/name', version: '1.2.3' } */
function parseName(file) {
  const match = /^(.+)\+(\d+\.\d+\.\d+[^+]*)\.patch$/.exec(file);
  if (!match) fail(`${file}: name it <package, / as +>+<version>.patch`);
  return { name: match[1].replaceAll('+', '/'), version: match[2] };
}

/** The src/ files a patch changes, as written in its `+++ b/...` lines. */
function changedSources(text) {
  return [...text.matchAll(/^\+\+\+ b\/(src\/\S+\.ts)$/gm)].map((m) => m[1]);
}

/**
 * The declarations (types/) of the changed files, from the patched sources (`@internal`
 * stripped, as the package's own build does): the package's
 * typings then show what the patch adds. tsc's type errors are not ours to fix (the
 * package's sources predate this TypeScript), so only a missing file is a failure.
 */
function redeclare(pkgDir, sources) {
  const out = path.join(pkgDir, PRISTINE, 'declarations');
  rmSync(out, { recursive: true, force: true });
  spawnSync(
    process.execPath,
    [
      path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      '--declaration',
      '--emitDeclarationOnly',
      '--stripInternal',
      '--strict',
      '--exactOptionalPropertyTypes',
      '--skipLibCheck',
      '--target',
      'es2022',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--lib',
      'es2022,dom',
      '--types',
      'node',
      '--typeRoots',
      path.join(root, 'node_modules', '@types'),
      '--rootDir',
      path.join(pkgDir, 'src'),
      '--outDir',
      out,
      ...sources.map((source) => path.join(pkgDir, source)),
    ],
    { cwd: pkgDir, encoding: 'utf8' },
  );
  for (const source of sources) {
    const declaration = `${path.basename(source, '.ts')}.d.ts`;
    if (!existsSync(path.join(out, declaration))) fail(`no declarations for ${source}`);
    cpSync(path.join(out, declaration), path.join(pkgDir, 'types', declaration));
  }
  rmSync(out, { recursive: true, force: true });
}

async function rebuild(pkgDir, sources) {
  const { transform } = await import('esbuild');
  for (const source of sources) {
    const code = readFileSync(path.join(pkgDir, source), 'utf8');
    const base = path.basename(source, '.ts');
    for (const [dir, format] of [
      ['lib/mjs', 'esm'],
      ['lib/cjs', 'cjs'],
    ]) {
      const out = await transform(code, {
        loader: 'ts',
        format,
        target: 'node18',
        sourcefile: source,
        // As the package's own build: class fields assigned in the constructor.
        tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
      });
      writeFileSync(path.join(pkgDir, dir, `${base}.js`), out.code);
    }
  }
}

async function applyPatch(file, checkOnly) {
  const { name, version } = parseName(file);
  const pkgDir = path.join(root, 'node_modules', name);
  if (!existsSync(path.join(pkgDir, 'package.json'))) fail(`${name} is not installed`);
  const installed = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  if (installed !== version) {
    fail(
      `${file} is for ${name} ${version}, but ${installed} is installed: check whether the new version fixes it (patches/README.md), then update or delete the patch`,
    );
  }
  const text = readFileSync(path.join(patchesDir, file), 'utf8');
  const hash = createHash('sha256').update(text).digest('hex');
  const markerPath = path.join(pkgDir, MARKER);
  const current = existsSync(markerPath) ? readFileSync(markerPath, 'utf8') : undefined;
  if (current === hash) return;
  if (checkOnly) fail(`${name} is not patched with ${file}: run node scripts/patch-deps.mjs`);

  // The files as installed are kept beside them (a reinstall removes both), so that a
  // changed patch is applied to them rather than on top of the old one.
  const pristine = path.join(pkgDir, PRISTINE);
  if (existsSync(pristine)) {
    for (const dir of ['src', 'lib', 'types']) {
      rmSync(path.join(pkgDir, dir), { recursive: true, force: true });
      cpSync(path.join(pristine, dir), path.join(pkgDir, dir), { recursive: true });
    }
  } else {
    if (current !== undefined)
      fail(`${name} was patched but its pristine copy is gone: reinstall it (npm ci)`);
    for (const dir of ['src', 'lib', 'types']) {
      cpSync(path.join(pkgDir, dir), path.join(pristine, dir), { recursive: true });
    }
  }
  const applied = spawnSync(
    'git',
    [
      'apply',
      '-p1',
      '--unsafe-paths',
      '--directory',
      path.relative(root, pkgDir),
      path.join(patchesDir, file),
    ],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
  if (applied.status !== 0)
    fail(`${file} does not apply: ${applied.stderr || applied.error?.message}`);
  await rebuild(pkgDir, changedSources(text));
  redeclare(pkgDir, changedSources(text));
  writeFileSync(markerPath, hash);
  console.log(`patch-deps: applied ${file}`);
}

const checkOnly = process.argv.includes('--check');
for (const file of readdirSync(patchesDir)
  .filter((f) => f.endsWith('.patch'))
  .sort()) {
  await applyPatch(file, checkOnly);
}
