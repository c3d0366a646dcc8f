// `node scripts/check-imports.mjs` (part of `npm run lint`): the import rules of src/.
//
//   1. No import cycles between source files, type-only imports included.
//   2. Folder boundaries (docs/architecture.md, "Target layout"): each folder imports only the
//      folders below it; client/ and server/ never import each other; cli/ and the other
//      extensions use only the public entry points (cli/ may also use ui/, and ui/page/, the
//      browser page, imports only ui/ files and no package); options/ is a leaf; transport/ is the only
//      importer of @cloudamqp/amqp-client, otel/ the only one of @opentelemetry/*, nestjs/ the
//      only one of @nestjs/*, rxjs and reflect-metadata.
//
// Only the kernel and the facade stay at the top of src/; every other file is in a folder.
// Imports are read with the TypeScript parser (each file parsed, nothing type-checked): `import`,
// `import type`, `export ... from`, `import()` calls and `import('...')` types.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Through require: importing its CommonJS from ESM would have Node scan all 9 MB for exports.
const ts = createRequire(import.meta.url)('typescript');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Another tree (the checker's own tests) may be given as the first argument.
const src = process.argv[2] === undefined ? path.join(root, 'src') : path.resolve(process.argv[2]);

/**
 * The kernel: small modules that import nothing outside the kernel, so every layer may use
 * them. Paths relative to src/.
 */
const KERNEL = new Set([
  'errors.ts',
  'logger.ts',
  'handler.ts',
  'interceptors.ts',
  'within.ts',
  'timers.ts',
  'option-names.ts',
]);

/** The composition root and the public entry points: above every folder. */
const FACADE = new Set(['connection.ts', 'index.ts']);

/** The public entry points (package.json `exports`): what extensions may import. */
const PUBLIC_ENTRIES = new Set([
  'index.ts',
  'otel/index.ts',
  'testing/index.ts',
  'nestjs/index.ts',
  'asyncapi/index.ts',
]);

/**
 * What each folder may import besides itself and the kernel. `types` lists files it may
 * import type-only (`import type`), for the seams it configures or describes.
 */
const FOLDERS = {
  protocol: { folders: [], types: ['transport/types.ts'] },
  options: { folders: [], types: ['transport/types.ts'] },
  transport: { folders: ['protocol', 'options'], packages: ['@cloudamqp/amqp-client'] },
  control: { folders: ['protocol', 'options', 'transport'] },
  client: { folders: ['protocol', 'options', 'transport', 'control'] },
  server: { folders: ['protocol', 'options', 'transport', 'control'] },
  contract: { folders: ['protocol', 'options'] },
  testing: { folders: ['protocol', 'options', 'transport'] },
  otel: { folders: [], public: true, packages: ['@opentelemetry/api'] },
  // The CLI hosts `rabbit-rpc ui` and shares ui/json-schema.ts (the checker the page runs).
  cli: { folders: ['ui'], public: true },
  ui: { folders: [], public: true },
  nestjs: { folders: [], public: true },
  asyncapi: { folders: [], public: true },
};

/** The browser page of `rabbit-rpc ui`: bundled alone for the browser, it imports only ui/ files. */
const PAGE = 'ui/page/';

/** Folders (and new top-level folders) that see only the public entry points. */
const EXTENSION = { folders: [], public: true };

/**
 * Imports that break a rule on purpose, each with its reason. Listed exactly: a new one
 * fails, and one that no longer exists must be removed from here.
 */
const KNOWN_EXCEPTIONS =
  process.argv[2] !== undefined
    ? []
    : [
        // `rabbit-rpc ping` is a broker diagnostic below the RPC layer: a passive queue.declare
        // on a raw connection of its own, dropped without a handshake when its time is up.
        // Making those pieces public would freeze transport internals (docs/decisions.md D34).
        ['cli/ping.ts', 'transport/amqp-client.ts'],
        ['cli/ping.ts', 'transport/errors.ts'],
        ['cli/ping.ts', 'options/connect.ts'],
        ['cli/ping.ts', 'options/validate.ts'],
      ];

function sourceFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(full));
    else if (entry.name.endsWith('.ts')) files.push(full);
  }
  return files;
}

/** `kernel`, `facade`, or the folder a file is in (undefined for any other top-level file). */
function layerOf(file) {
  if (KERNEL.has(file)) return 'kernel';
  if (FACADE.has(file)) return 'facade';
  const slash = file.indexOf('/');
  if (slash !== -1) return file.slice(0, slash);
  return undefined;
}

/** The imports of one file: relative ones resolved to src/ paths, packages by name. */
function importsOf(file) {
  const text = readFileSync(path.join(src, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found = [];
  const add = (specifier, typeOnly) => {
    if (!ts.isStringLiteralLike(specifier)) return;
    const name = specifier.text;
    if (!name.startsWith('.')) {
      const parts = name.split('/');
      found.push({
        package: name.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0],
        typeOnly,
        specifier: name,
      });
      return;
    }
    const resolved = path
      .relative(src, path.resolve(path.dirname(path.join(src, file)), name))
      .split(path.sep)
      .join('/')
      .replace(/\.js$/, '.ts');
    found.push({ file: resolved, typeOnly, specifier: name });
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      // Under verbatimModuleSyntax only `import type` is erased; `import { type X }` stays.
      add(node.moduleSpecifier, node.importClause?.isTypeOnly === true);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, true);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0]
    ) {
      add(node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const problems = [];
const files = sourceFiles(src)
  .map((full) => path.relative(src, full).split(path.sep).join('/'))
  .sort();
const known = new Set(files);
const graph = new Map();
const seenExceptions = new Set();

for (const file of files) {
  const layer = layerOf(file);
  if (layer === undefined) {
    problems.push(
      `${file}: a new file at the top of src/ goes in a folder (docs/architecture.md), ` +
        'unless it belongs to the kernel (KERNEL in scripts/check-imports.mjs)',
    );
  }
  const edges = [];
  for (const imported of importsOf(file)) {
    if (imported.package !== undefined) {
      if (file.startsWith(PAGE)) {
        problems.push(
          `${file}: imports ${imported.specifier}: the page runs in the browser, from its own bundle: no packages, no Node modules`,
        );
        continue;
      }
      checkPackage(file, layer, imported);
      continue;
    }
    if (!known.has(imported.file)) {
      problems.push(`${file}: imports ${imported.specifier}, which is not a file of src/`);
      continue;
    }
    edges.push(imported.file);
    if (file.startsWith(PAGE) && !imported.file.startsWith('ui/')) {
      problems.push(`${file}: imports ${imported.specifier}: the page (${PAGE}) imports only ui/`);
      continue;
    }
    const why = boundaryBroken(file, layer, imported);
    if (why === undefined) continue;
    const exception = `${file} -> ${imported.file}`;
    if (KNOWN_EXCEPTIONS.some(([from, to]) => `${from} -> ${to}` === exception)) {
      seenExceptions.add(exception);
      continue;
    }
    problems.push(`${file}: imports ${imported.specifier}: ${why}`);
  }
  graph.set(file, edges);
}

for (const [from, to] of KNOWN_EXCEPTIONS) {
  if (!seenExceptions.has(`${from} -> ${to}`)) {
    problems.push(`KNOWN_EXCEPTIONS lists ${from} -> ${to}, which is gone: remove it`);
  }
}

for (const cycle of cycles(graph)) problems.push(`import cycle: ${cycle.join(' -> ')}`);

if (problems.length > 0) {
  console.error(problems.map((problem) => `check-imports: ${problem}`).join('\n'));
  process.exit(1);
}
console.log(
  `check-imports: ${files.length} files, no cycles, boundaries kept` +
    ` (${KNOWN_EXCEPTIONS.length} known exceptions in cli/)`,
);

function checkPackage(file, layer, imported) {
  const name = imported.package;
  if (name.startsWith('node:') || builtinModules.includes(name)) return;
  if (name === '@cloudamqp/amqp-client' && layer !== 'transport') {
    problems.push(`${file}: only transport/ imports @cloudamqp/amqp-client`);
  }
  if (name.startsWith('@opentelemetry/') && layer !== 'otel') {
    problems.push(`${file}: only otel/ imports ${name}`);
  }
  // Nest and what it needs are optional peers: only the rabbit-rpc/nestjs entry loads them.
  if (
    (name.startsWith('@nestjs/') || name === 'rxjs' || name === 'reflect-metadata') &&
    layer !== 'nestjs'
  ) {
    problems.push(`${file}: only nestjs/ imports ${name}`);
  }
}

/** Why importing `imported` from `file` breaks a boundary; undefined when it does not. */
function boundaryBroken(file, layer, imported) {
  const target = layerOf(imported.file);
  if (target === layer) return undefined;
  if (target === 'kernel') return undefined;
  if (layer === 'kernel') return 'the kernel imports nothing outside the kernel';
  if (target === 'cli') return 'nothing outside cli/ imports it';
  if (layer === 'facade') return undefined;
  const rule = FOLDERS[layer] ?? EXTENSION;
  if (rule.public) {
    return PUBLIC_ENTRIES.has(imported.file) || rule.folders.includes(target)
      ? undefined
      : `${layer}/ uses only the public entry points (${[...PUBLIC_ENTRIES].join(', ')})`;
  }
  if (rule.folders.includes(target)) return undefined;
  if (imported.typeOnly && rule.types?.includes(imported.file)) return undefined;
  if (target === 'client' || target === 'server') {
    return `${layer}/ never imports ${target}/`;
  }
  return `${layer}/ may import only ${[...rule.folders, 'the kernel'].join(', ')}${
    rule.types ? ` (and types from ${rule.types.join(', ')})` : ''
  }, not ${target}/`;
}

/** The import cycles: one per strongly connected component, as a path through it (Tarjan). */
function cycles(edges) {
  let index = 0;
  const stack = [];
  const onStack = new Set();
  const indices = new Map();
  const lowlinks = new Map();
  const found = [];
  const visit = (node) => {
    indices.set(node, index);
    lowlinks.set(node, index);
    index++;
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!indices.has(next)) {
        visit(next);
        lowlinks.set(node, Math.min(lowlinks.get(node), lowlinks.get(next)));
      } else if (onStack.has(next)) {
        lowlinks.set(node, Math.min(lowlinks.get(node), indices.get(next)));
      }
    }
    if (lowlinks.get(node) !== indices.get(node)) return;
    const component = new Set();
    let member;
    do {
      member = stack.pop();
      onStack.delete(member);
      component.add(member);
    } while (member !== node);
    const selfImport = (edges.get(node) ?? []).includes(node);
    if (component.size > 1 || selfImport) found.push(pathWithin(edges, component, node));
  };
  for (const node of edges.keys()) if (!indices.has(node)) visit(node);
  return found;
}

/** A shortest cycle through `start` inside one component (breadth-first). */
function pathWithin(edges, component, start) {
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift();
    for (const next of edges.get(node) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) {
        const cycle = [start];
        for (let at = node; at !== start; at = previous.get(at)) cycle.splice(1, 0, at);
        return [...cycle, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [start, start];
}
