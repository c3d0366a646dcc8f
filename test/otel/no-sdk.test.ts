import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { metrics, tracing } from '../../src/otel/index.js';
import { connectForTest, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Every .ts file under `dir`, recursively. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

describe('otel without an SDK', () => {
  test('with nothing registered, the interceptors do nothing visible and calls work', async () => {
    // No tracer provider, meter provider or propagator registered: the API's no-ops.
    const traced = tracing();
    const measured = metrics();
    const rpc = await connectForTest({
      callInterceptors: [traced.call, measured.call],
      serveInterceptors: [traced.serve, measured.serve],
    });
    measured.observe(rpc);
    const queue = uniqueQueue('otel-nosdk');
    await rpc.serve(queue, (_request, ctx) =>
      Object.keys(ctx.headers).filter((k) => k.startsWith('trace')),
    );
    assert.deepEqual(await rpc.call(queue, null), []);
  });

  test('only src/otel imports @opentelemetry: the main entry works without it', () => {
    const offenders = sourceFiles(srcDir)
      .filter((file) => !file.startsWith(path.join(srcDir, 'otel') + path.sep))
      .filter((file) => readFileSync(file, 'utf8').includes('@opentelemetry/'));
    assert.deepEqual(offenders, []);
    const otelFiles = sourceFiles(path.join(srcDir, 'otel'));
    const seen = new Set<string | undefined>();
    for (const file of otelFiles) {
      const imports = [
        ...readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^;]*?from '([^']+)';/gms),
      ].map((m) => m[1]);
      for (const specifier of imports) {
        seen.add(specifier);
        assert.ok(
          specifier === '@opentelemetry/api' || specifier?.startsWith('.'),
          `${path.basename(file)} imports ${String(specifier)}`,
        );
      }
    }
    assert.ok(seen.has('@opentelemetry/api') && seen.has('./tracing.js'), 'the scan sees imports');
  });
});
