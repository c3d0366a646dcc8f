// The comparison of two source trees in `npm run bench -- --rpc-rev REV` (bench/lib/compare.ts):
// the per-repetition ratios, their medians and the table. No timings are measured here.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { medianRatios, ratios, renderComparison, type Metrics } from '../../bench/lib/compare.js';

const metrics = (callsPerSec: number, cpu: number, p99Ms = 2, maxRssMb = 60): Metrics => ({
  callsPerSec,
  clientUsPerCall: cpu,
  serverUsPerCall: cpu / 2,
  p99Ms,
  maxRssMb,
});

describe('bench comparison', () => {
  test('ratios are mine / theirs, NaN where a side is missing or not positive', () => {
    const r = ratios(metrics(1100, 90, 3), metrics(1000, 100, 2));
    assert.deepEqual(r, {
      callsPerSec: 1.1,
      clientUsPerCall: 0.9,
      serverUsPerCall: 0.9,
      p99Ms: 1.5,
      maxRssMb: 1,
    });
    const failed = ratios(metrics(1000, 100), { ...metrics(0, NaN), maxRssMb: 60 });
    assert.ok(Number.isNaN(failed.callsPerSec));
    assert.ok(Number.isNaN(failed.clientUsPerCall));
    assert.equal(failed.maxRssMb, 1);
  });

  test('medians come from the undisturbed pairs when there are any', () => {
    const pair = (x: number, disturbed = false) => ({
      ratios: ratios(metrics(1000 * x, 100), metrics(1000, 100)),
      disturbed,
    });
    const mixed = medianRatios([pair(1.1), pair(0.5, true), pair(0.9), pair(1.0)]);
    assert.equal(mixed.ratios.callsPerSec, 1);
    assert.equal(mixed.ratios.clientUsPerCall, 1);
    assert.deepEqual([mixed.pairs, mixed.disturbed, mixed.leftOut], [3, 0, 1]);
    const allDisturbed = medianRatios([pair(0.8, true), pair(1.2, true)]);
    assert.equal(allDisturbed.ratios.callsPerSec, 1);
    assert.deepEqual([allDisturbed.pairs, allDisturbed.disturbed, allDisturbed.leftOut], [2, 2, 0]);
    assert.ok(Number.isNaN(medianRatios([]).ratios.p99Ms));
  });

  test('the table has a row per case and implementation, five ratios and the pairs', () => {
    const text = renderComparison(
      [
        {
          case: 'seq',
          impl: 'rabbit-rpc',
          other: 'rabbit-rpc@1a2b3c4',
          ...medianRatios([
            { ratios: ratios(metrics(1010, 99), metrics(1000, 100)), disturbed: false },
          ]),
        },
        {
          case: 'c16',
          impl: 'rabbit-rpc',
          other: 'rabbit-rpc@1a2b3c4',
          ...medianRatios([
            { ratios: ratios(metrics(0, NaN), metrics(1000, 100)), disturbed: true },
          ]),
        },
      ],
      'src/ of git main (1a2b3c4)',
    );
    const lines = text.split('\n');
    assert.match(lines[0] ?? '', /^Working tree \/ src\/ of git main \(1a2b3c4\): median/);
    assert.equal(
      lines.find((l) => l.startsWith('| seq ')),
      '| seq | rabbit-rpc vs rabbit-rpc@1a2b3c4 | 1.01 | 0.99 | 0.99 | 1.00 | 1.00 | 1 |',
    );
    assert.equal(
      lines.find((l) => l.startsWith('| c16 ')),
      '| c16 | rabbit-rpc vs rabbit-rpc@1a2b3c4 | – | – | – | 1.00 | 1.00 | 1 (1 disturbed) |',
    );
    // Header and separator have as many columns as the rows.
    const columns = (l: string | undefined): number => (l ?? '').split('|').length;
    assert.equal(columns(lines[2]), columns(lines[3]));
    assert.equal(columns(lines[3]), columns(lines[4]));
  });
});
