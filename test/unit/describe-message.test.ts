// The describe message as a pair (src/protocol/describe.ts): what a server writes
// (src/server/describe.ts) is what a caller reads back; what breaks the shape is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readInstanceDescription } from '../../src/protocol/describe.js';
import { describeInstance, ErrorCounts } from '../../src/server/describe.js';

function written() {
  const errors = new ErrorCounts();
  errors.count('NOT_FOUND');
  errors.count('NOT_FOUND');
  errors.count('INTERNAL');
  return describeInstance({
    queue: 'rpc.math',
    contract: {
      service: 'math',
      queue: 'rpc.math',
      methods: [
        {
          name: 'add',
          stream: false,
          idempotent: true,
          input: { type: 'object' },
          output: { type: 'number' },
          errors: [{ code: 'NOT_FOUND', details: true }, { code: 'INTERNAL' }],
        },
        { name: 'tail', stream: true, idempotent: false, errors: [] },
      ],
    },
    instance: 'amq.gen-1',
    startedAt: Date.UTC(2026, 0, 2, 3, 4, 5),
    inFlight: 2,
    prefetch: 10,
    replied: 7,
    expired: 1,
    errors,
    batch: { maxCalls: 1000, maxBytes: 1048576 },
  });
}

test('written by a server, read back unchanged (through JSON)', () => {
  const body = written();
  assert.equal(body.startedAt, '2026-01-02T03:04:05.000Z');
  assert.deepEqual(body.counters, { calls: 7, errors: { NOT_FOUND: 2, INTERNAL: 1 }, expired: 1 });
  assert.deepEqual(readInstanceDescription(JSON.parse(JSON.stringify(body))), body);
});

test('a plain server: no service, no methods', () => {
  const body = describeInstance({
    queue: 'q',
    contract: undefined,
    instance: 'amq.gen-2',
    startedAt: 0,
    inFlight: 0,
    prefetch: 1,
    replied: 0,
    expired: 0,
    errors: new ErrorCounts(),
    batch: undefined,
  });
  assert.equal('service' in body, false);
  assert.equal('batch' in body, false);
  assert.deepEqual(readInstanceDescription(body), body);
});

test('refused: wrong version, bad counts, names, schemas, too many methods', () => {
  const body = written() as unknown as Record<string, unknown>;
  const bad: Array<Record<string, unknown>> = [
    { ...body, describe: 2 },
    { ...body, queue: '' },
    { ...body, queue: 'q'.repeat(256) },
    { ...body, prefetch: 1.5 },
    { ...body, inFlight: '1' },
    { ...body, library: { name: 'x' } },
    { ...body, counters: { calls: 0, errors: { A: -1 }, expired: 0 } },
    {
      ...body,
      methods: Array.from({ length: 1_001 }, (_, i) => ({
        name: `m${i}`,
        stream: false,
        idempotent: false,
        errors: [],
      })),
    },
    { ...body, methods: [{ name: 'm', stream: 'no', idempotent: false, errors: [] }] },
    { ...body, methods: [{ name: 'm', stream: false, idempotent: false, errors: [], output: 3 }] },
  ];
  let deep: unknown = {};
  for (let i = 0; i < 100; i++) deep = { items: deep };
  bad.push({
    ...body,
    methods: [{ name: 'm', stream: false, idempotent: false, errors: [], input: deep }],
  });
  for (const value of [...bad, null, [], 'x', 1])
    assert.equal(readInstanceDescription(value), undefined);
});

test('the batch advertisement: read when well formed; absent or malformed reads as none', () => {
  const body = written() as unknown as Record<string, unknown>;
  assert.deepEqual(readInstanceDescription(body)?.batch, { maxCalls: 1000, maxBytes: 1048576 });
  // An older peer sends none: still a valid description, one that reads no batches.
  const older = { ...body };
  delete older['batch'];
  const read = readInstanceDescription(older);
  assert.notEqual(read, undefined);
  assert.equal(read?.batch, undefined);
  for (const batch of [
    { maxCalls: 0, maxBytes: 1 },
    { maxCalls: 2 },
    { maxCalls: '2', maxBytes: 9 },
    3,
  ]) {
    const malformed = readInstanceDescription({ ...body, batch });
    assert.notEqual(malformed, undefined);
    assert.equal(malformed?.batch, undefined);
  }
});
