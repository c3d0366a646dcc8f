// JSON would change these values without a word; rabbit-rpc refuses them instead, at call
// time for a request (INVALID_ARGUMENT, nothing sent) and as an INTERNAL error reply for a
// handler's result. docs/payloads.md lists the rules.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { encodeBody, jsonText } from '../../src/protocol/codec.js';
import { RpcError } from '../../src/errors.js';
import { connect } from '../../src/index.js';
import { MemoryBroker } from '../../src/testing/index.js';

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}
class Money {
  constructor(readonly cents: number) {}
  toJSON(): string {
    return `${this.cents / 100} EUR`;
  }
}

/** Values JSON would send as something else, and the path the error names. */
const LOSSY: ReadonlyArray<[string, unknown, string]> = [
  ['a Map', new Map([['a', 1]]), ''],
  ['a Set', { tags: new Set(['x']) }, '.tags'],
  ['NaN', { n: NaN }, '.n'],
  ['Infinity', [1, Infinity], '[1]'],
  ['-Infinity', -Infinity, ''],
  ['undefined in an array', [1, undefined], '[1]'],
  ['a sparse array', [1, , 3], '[1]'], // eslint-disable-line no-sparse-arrays
  ['a function', { f: () => 1 }, '.f'],
  ['a function alone', () => 1, ''],
  ['a symbol', { s: Symbol('s') }, '.s'],
  ['a class instance', { at: new Point(1, 2) }, '.at'],
  ['an Error', { error: new Error('x') }, '.error'],
  ['an invalid Date', { when: new Date('nope') }, '.when'],
  ['nested bytes', { data: new Uint8Array([1]) }, '.data'],
  ['a nested Buffer', { data: Buffer.from('x') }, '.data'],
  ['an ArrayBuffer', new ArrayBuffer(2), ''],
  ['a WeakMap', { deep: [{ map: new WeakMap() }] }, '.deep[0].map'],
  ['an odd key', { 'a b': new Set() }, '["a b"]'],
];

describe('values JSON would change are refused', () => {
  for (const [name, value, path] of LOSSY) {
    test(name, () => {
      for (const code of ['INVALID_ARGUMENT', 'INTERNAL'] as const) {
        assert.throws(
          () => jsonText(value, code),
          (error: unknown) =>
            error instanceof RpcError &&
            error.code === code &&
            (error.details as { path: string }).path === path,
        );
      }
    });
  }

  test('BigInt and cycles, as before', () => {
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    assert.throws(() => jsonText({ n: 1n }, 'INVALID_ARGUMENT'), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => jsonText(cycle, 'INTERNAL'), { code: 'INTERNAL' });
  });
});

describe('what JSON carries, or converts on purpose', () => {
  test('plain values, arrays, objects, null-prototype objects', () => {
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    const value = { s: 'x', n: -1.5, b: true, z: null, list: [1, 'a', [null]], bare };
    assert.equal(jsonText(value, 'INTERNAL'), JSON.stringify(value));
  });

  test('undefined properties are left out (absent); undefined alone is null', () => {
    assert.equal(jsonText({ a: 1, b: undefined }, 'INTERNAL'), '{"a":1}');
    assert.equal(jsonText(undefined, 'INTERNAL'), 'null');
  });

  test('toJSON() decides: a Date is its ISO string, a class with toJSON its own choice', () => {
    const when = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6));
    assert.equal(jsonText({ when }, 'INTERNAL'), '{"when":"2026-01-02T03:04:05.006Z"}');
    assert.equal(jsonText([new Money(250)], 'INTERNAL'), '["2.5 EUR"]');
  });

  test('boxed strings and numbers, -0 (as 0), bytes alone (sent as they are)', () => {
    assert.equal(jsonText([new String('a'), new Number(1)], 'INTERNAL'), '["a",1]');
    assert.equal(jsonText(-0, 'INTERNAL'), '0');
    assert.equal(
      encodeBody(new Uint8Array([1]), 'INTERNAL').contentType,
      'application/octet-stream',
    );
  });
});

test('end to end: a lossy request is refused before sending, a lossy reply is INTERNAL', async () => {
  const broker = new MemoryBroker();
  const rpc = await connect({ url: 'amqp://memory', transport: broker.transport });
  try {
    let runs = 0;
    await rpc.serve('q', (request: { reply: string }) => {
      runs++;
      return request.reply === 'map' ? new Map([['a', 1]]) : { at: new Date(0) };
    });
    await assert.rejects(rpc.call('q', { reply: 'ok', tags: new Set([1]) }), {
      code: 'INVALID_ARGUMENT',
    });
    assert.equal(runs, 0, 'the refused request was never sent');
    await assert.rejects(rpc.call('q', { reply: 'map' }), { code: 'INTERNAL' });
    assert.deepEqual(await rpc.call('q', { reply: 'date' }), { at: '1970-01-01T00:00:00.000Z' });
  } finally {
    await rpc.close();
    await broker.close();
  }
});
