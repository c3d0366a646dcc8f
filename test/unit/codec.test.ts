import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { decodeBody, encodeBody, utf8Text } from '../../src/protocol/codec.js';
import { RpcError } from '../../src/errors.js';

describe('encodeBody', () => {
  test('encodes values as JSON with the JSON content type', () => {
    const { body, contentType } = encodeBody({ a: [1, 'x'] }, 'INTERNAL');
    assert.equal(contentType, 'application/json');
    assert.equal(Buffer.from(body).toString(), '{"a":[1,"x"]}');
  });

  test('encodes a string as a JSON string, as the seed does', () => {
    assert.equal(Buffer.from(encodeBody('Hello', 'INTERNAL').body).toString(), '"Hello"');
  });

  test('encodes undefined as null', () => {
    assert.equal(Buffer.from(encodeBody(undefined, 'INTERNAL').body).toString(), 'null');
  });

  test('sends bytes as they are', () => {
    const bytes = new Uint8Array([0, 1, 255]);
    const encoded = encodeBody(bytes, 'INTERNAL');
    assert.equal(encoded.contentType, 'application/octet-stream');
    assert.equal(encoded.body, bytes);
  });

  test('fails with the given code on values JSON cannot hold', () => {
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    assert.throws(() => encodeBody(10n, 'INVALID_ARGUMENT'), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => encodeBody(cycle, 'INTERNAL'), { code: 'INTERNAL' });
  });
});

describe('decodeBody', () => {
  const bytes = (text: string) => new Uint8Array(Buffer.from(text));

  test('decodes JSON, with or without a content type (plain AMQP clients send none)', () => {
    assert.deepEqual(decodeBody(bytes('{"i":1}'), 'application/json', 'INTERNAL'), { i: 1 });
    assert.deepEqual(decodeBody(bytes('"Processed: x"'), undefined, 'INTERNAL'), 'Processed: x');
    assert.deepEqual(decodeBody(bytes('[1]'), 'application/json; charset=utf-8', 'INTERNAL'), [1]);
  });

  test('an empty body is undefined', () => {
    assert.equal(decodeBody(null, undefined, 'INTERNAL'), undefined);
    assert.equal(decodeBody(new Uint8Array(0), 'application/json', 'INTERNAL'), undefined);
  });

  test('binary and text content types', () => {
    const decoded = decodeBody(bytes('abc'), 'application/octet-stream', 'INTERNAL');
    assert.ok(Buffer.isBuffer(decoded));
    assert.equal(decoded.toString(), 'abc');
    assert.equal(decodeBody(bytes('abc'), 'text/plain', 'INTERNAL'), 'abc');
  });

  test('invalid JSON and unknown content types fail with the given code', () => {
    assert.throws(
      () => decodeBody(bytes('{nope'), 'application/json', 'INVALID_ARGUMENT'),
      (error) => {
        assert.ok(error instanceof RpcError);
        assert.equal(error.code, 'INVALID_ARGUMENT');
        return true;
      },
    );
    assert.throws(() => decodeBody(bytes('x'), 'application/xml', 'INVALID_ARGUMENT'), {
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('utf8Text', () => {
  test('decodes as Buffer#toString does: invalid bytes, a byte order mark, every length', () => {
    const samples = [
      [0xff],
      [0xc3],
      [0xe2, 0x82],
      [0xf0, 0x9f, 0x98],
      [0xed, 0xa0, 0x80],
      [0xc0, 0xaf],
      [0xf4, 0x90, 0x80, 0x80],
      [0xef, 0xbb, 0xbf, 0x7b, 0x7d],
      [...Buffer.from('{"név":"✓ 😀"}')],
    ];
    // Deterministic pseudo-random bytes (a linear congruential generator).
    let seed = 7;
    for (let n = 1; n <= 300; n++) {
      samples.push(
        Array.from({ length: n % 97 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23),
      );
    }
    for (const sample of samples) {
      const bytes = new Uint8Array(sample);
      assert.equal(
        utf8Text(bytes),
        Buffer.from(bytes).toString('utf8'),
        `bytes ${sample.join(',')}`,
      );
    }
  });

  test('small bodies stay in the JavaScript heap: no ArrayBuffer is taken out of them', () => {
    // V8 keeps typed arrays of up to 64 bytes in its heap; reading `.buffer` moves each one
    // out into an ArrayBuffer of its own (D41). Kept alive here, so that a collection
    // cannot hide them from the count.
    const kept: Uint8Array[] = [];
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 10_000; i++) {
      // Written byte by byte: Buffer.from would take bytes from a pooled ArrayBuffer.
      const text = `{"i":${i},"ok":true}`;
      const body = new Uint8Array(text.length);
      for (let k = 0; k < text.length; k++) body[k] = text.charCodeAt(k);
      kept.push(body);
      assert.deepEqual(decodeBody(body, 'application/json', 'INTERNAL'), { i, ok: true });
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    // Reading `.buffer` grows it by the bodies' 200,000 bytes or more; nothing else here takes
    // an ArrayBuffer, but the test runner may, a little.
    assert.ok(grown < 50_000, `arrayBuffers grew by ${grown} bytes for ${kept.length} bodies`);
  });
});
