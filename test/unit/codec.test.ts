import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { decodeBody, encodeBody } from '../../src/protocol/codec.js';
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
