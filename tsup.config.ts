import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { defineConfig } from 'tsup';

// @cloudamqp/amqp-client is bundled into dist/ with our patches applied (patches/README.md):
// users who install rabbit-rpc from npm run the fixed code, not the registry's 4.1.1.
execFileSync(process.execPath, ['scripts/patch-deps.mjs'], { stdio: 'inherit' });
const bundled = [/^@cloudamqp\/amqp-client(\/|$)/];

/** The bundled client's licence travels with it. */
function copyLicence(): void {
  mkdirSync('dist', { recursive: true });
  copyFileSync('node_modules/@cloudamqp/amqp-client/LICENSE', 'dist/LICENSE.amqp-client');
}

// keepNames: esbuild renames a class with static members (RpcError becomes `_RpcError`), and
// Node prints an error by its constructor's name: users must see `RpcError: ...`.

export default defineConfig([
  {
    entry: {
      index: 'src/index.ts',
      testing: 'src/testing/index.ts',
      otel: 'src/otel/index.ts',
      nestjs: 'src/nestjs/index.ts',
      asyncapi: 'src/asyncapi/index.ts',
    },
    format: ['esm', 'cjs'],
    // Declarations marked @internal stay out of the published types (npm run check:package).
    dts: { compilerOptions: { stripInternal: true } },
    sourcemap: true,
    clean: true,
    keepNames: true,
    target: 'node20',
    noExternal: bundled,
    onSuccess: () => {
      copyLicence();
      return Promise.resolve();
    },
  },
  {
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    sourcemap: true,
    keepNames: true,
    target: 'node20',
    noExternal: bundled,
    banner: { js: '#!/usr/bin/env node' },
  },
  {
    // The page of `rabbit-rpc ui` (src/ui/page): one script for the browser, minified, with
    // its HTML and CSS, in dist/ui/; the CLI serves these files, nothing comes from a CDN.
    entry: { app: 'src/ui/page/main.ts' },
    outDir: 'dist/ui',
    format: ['iife'],
    platform: 'browser',
    target: 'es2022',
    minify: true,
    outExtension: () => ({ js: '.js' }),
    onSuccess: () => {
      for (const file of ['index.html', 'app.css'])
        copyFileSync(`src/ui/page/${file}`, `dist/ui/${file}`);
      return Promise.resolve();
    },
  },
]);
