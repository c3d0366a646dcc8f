// Micro-benchmark of the checks on every call's path: unknown option names
// (src/option-names.ts) and lossy JSON (src/json-loss.ts), against what they add to.
//   node --import tsx bench/micro-checks.ts
// Prints ns per operation, the median of 7 rounds. Not a test: figures vary by machine.
import { performance } from 'node:perf_hooks';
import { jsonText } from '../src/protocol/codec.js';
import { checkOptionNames } from '../src/option-names.js';
import { CALL_OPTION_NAMES } from '../src/options/call.js';

function nsPerOp(run: () => unknown, ops = 1_000_000): number {
  const rounds: number[] = [];
  let sink: unknown;
  for (let round = 0; round < 7; round++) {
    const started = performance.now();
    for (let i = 0; i < ops; i++) sink = run();
    rounds.push(((performance.now() - started) * 1e6) / ops);
  }
  if (sink === Symbol.for('never')) console.log(sink);
  rounds.sort((a, b) => a - b);
  return rounds[3] as number;
}

const options = { timeoutMs: 5_000, headers: { tenant: 'a' } };
const small = { id: 42, name: 'Ada', active: true };
const order = {
  id: 'o-1',
  customer: { id: 'c-9', name: 'Ada Lovelace', email: 'ada@example.com' },
  lines: Array.from({ length: 10 }, (_, i) => ({ sku: `sku-${i}`, qty: i + 1, price: 9.99 })),
  notes: null,
  createdAt: '2026-01-01T00:00:00.000Z',
};

const rows: Array<[string, () => unknown]> = [
  [
    'checkOptionNames({ timeoutMs, headers })',
    () => checkOptionNames(options, CALL_OPTION_NAMES, 'call()'),
  ],
  ['JSON.stringify("Hello World")', () => JSON.stringify('Hello World')],
  ['jsonText("Hello World")', () => jsonText('Hello World', 'INVALID_ARGUMENT')],
  ['JSON.stringify(3 fields)', () => JSON.stringify(small)],
  ['jsonText(3 fields)', () => jsonText(small, 'INVALID_ARGUMENT')],
  ['JSON.stringify(order, 10 lines)', () => JSON.stringify(order)],
  ['jsonText(order, 10 lines)', () => jsonText(order, 'INVALID_ARGUMENT')],
];
for (const [name, run] of rows) {
  console.log(
    `${name.padEnd(44)} ${nsPerOp(run, name.includes('order') ? 200_000 : 1_000_000)
      .toFixed(1)
      .padStart(8)} ns`,
  );
}
