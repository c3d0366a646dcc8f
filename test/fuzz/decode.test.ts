/**
 * Property-based fuzzing of every function that decodes what a peer sent: the AMQP
 * client's property and table decoder (as patched, patches/README.md), request and reply
 * bodies, batches, replies and error replies. Each must return a decoded value or an
 * RpcError with a code (the AMQP decoder: a value or a plain Error), never anything else,
 * never a stack overflow, in bounded time.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AMQPView } from '@cloudamqp/amqp-client/amqp-view';
import { readReplyBatch, readRequestBatch } from '../../src/protocol/batch.js';
import { decodeReplyOutcome } from '../../src/protocol/error-reply.js';
import { decodeBody } from '../../src/protocol/codec.js';
import { ERROR_CODES, RpcError, type RpcErrorCode } from '../../src/errors.js';
import type { AmqpMessageLike } from '../../src/transport/types.js';
import { body, contentType, headers } from './arbitraries.js';
import { nestedTableContent } from './raw-amqp.js';

/** Runs per property: all of this file takes a few seconds. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
/** The most one decode may take; a fraction of it is normal (the deep nests take longest). */
const BOUND_MS = 250;

function timed<T>(work: () => T): T {
  const started = performance.now();
  try {
    return work();
  } finally {
    const took = performance.now() - started;
    assert.ok(took < BOUND_MS, `one decode took ${took.toFixed(1)} ms`);
  }
}

/**
 * `value` with every Date as its time in ms: a random timestamp field can decode to an
 * invalid Date, and assert.deepEqual says two invalid Dates differ (NaN !== NaN).
 */
function comparable(value: unknown): unknown {
  if (value instanceof Date) return `Date(${String(value.getTime())})`;
  if (Array.isArray(value)) return value.map(comparable);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) {
      // defineProperty: a `__proto__` key stays a key.
      Object.defineProperty(copy, key, { value: comparable(field), enumerable: true });
    }
    return copy;
  }
  return value;
}

/** The outcome of `work`: its value, or the RpcError it threw; anything else fails. */
function valueOrRpcError(work: () => unknown, codes: readonly RpcErrorCode[]): unknown {
  try {
    return timed(work);
  } catch (error) {
    assert.ok(error instanceof RpcError, `threw a non-RpcError: ${String(error)}`);
    assert.ok(codes.includes(error.code), `unexpected code ${error.code}`);
    return error;
  }
}

/** A frame's bytes inside a larger buffer whose other bytes are `fill`: what the client sees. */
function embedded(frame: Uint8Array, fill: number): AMQPView {
  // More than a short string's reach on either side, as a socket read or the frame buffer
  // has: a length that runs past the frame reads these bytes instead of failing.
  const memory = Buffer.alloc(frame.length + 2 * PADDING, fill);
  memory.set(frame, PADDING);
  return new AMQPView(memory.buffer, memory.byteOffset + PADDING, frame.length);
}
const PADDING = 512;

function decodeProperties(frame: Uint8Array, fill: number): unknown {
  try {
    const [properties, length] = embedded(frame, fill).getProperties(0);
    assert.ok(length <= frame.length, `read ${length} bytes of a ${frame.length}-byte frame`);
    return properties;
  } catch (error) {
    assert.ok(error instanceof Error, String(error));
    assert.ok(!/call stack/.test(error.message), error.message);
    return `threw ${error.name}`;
  }
}

/** Properties with headers (flag 0x2000) whose table is `content`. */
function headerFrame(content: Uint8Array): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt16BE(0x2000, 0);
  head.writeUInt32BE(content.length, 2);
  return Buffer.concat([head, content]);
}

const FIELD_TYPES = [...Buffer.from('tbBsuIilfdSFAxTVD')];

/** Table contents built from random fields, then some bytes overwritten at random. */
const mutatedTable = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.string({ maxLength: 6 }),
        fc.constantFrom(...FIELD_TYPES),
        fc.uint8Array({ maxLength: 12 }),
      ),
      { maxLength: 8 },
    ),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
  )
  .map(([fields, flips]) => {
    const bytes = Buffer.concat(
      fields.map(([key, type, value]) => {
        const name = Buffer.from(key).subarray(0, 255);
        return Buffer.concat([Buffer.from([name.length]), name, Buffer.from([type]), value]);
      }),
    );
    for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value;
    return bytes;
  });

/** A table whose last field, a string, claims up to 255 bytes more than the frame has. */
const overrunningTable = fc
  .tuple(mutatedTable, fc.constantFrom('S', 'x'), fc.integer({ min: 1, max: 255 }))
  .map(([content, type, extra]) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(extra, 0);
    return Buffer.concat([content, Buffer.from([1]), Buffer.from('k'), Buffer.from(type), length]);
  });

describe('fuzz: the AMQP client decodes message properties (patched)', () => {
  test('any bytes: properties or an Error, never a read outside the frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (frame) => {
        // The same frame in memory filled differently must decode the same: nothing is
        // read from outside it.
        assert.deepEqual(
          timed(() => decodeProperties(frame, 0x00)),
          decodeProperties(frame, 0xff),
        );
      }),
      { numRuns: RUNS },
    );
  });

  test('tables of random fields with random corruption, or lengths past the frame', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedTable, overrunningTable), (content) => {
        const frame = headerFrame(content);
        assert.deepEqual(
          comparable(timed(() => decodeProperties(frame, 0x00))),
          comparable(decodeProperties(frame, 0x41)),
        );
      }),
      { numRuns: RUNS },
    );
  });

  test('nests of any depth: decoded up to 100 levels, a RangeError past them', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20_000 }), (depth) => {
        const outcome = timed(() => decodeProperties(headerFrame(nestedTableContent(depth)), 0));
        if (depth <= 101) assert.equal(typeof outcome, 'object');
        else assert.equal(outcome, 'threw RangeError');
      }),
      { numRuns: 100 },
    );
  });

  test('a __proto__ header is a plain key, not the prototype', () => {
    const inner = Buffer.concat([
      Buffer.from([1]),
      Buffer.from('x'),
      Buffer.from('t'),
      Buffer.from([1]),
    ]);
    const innerTable = Buffer.alloc(4);
    innerTable.writeUInt32BE(inner.length, 0);
    const content = Buffer.concat([
      Buffer.from([9]),
      Buffer.from('__proto__'),
      Buffer.from('F'),
      innerTable,
      inner,
    ]);
    const [properties] = embedded(headerFrame(content), 0).getProperties(0);
    const decoded = properties.headers ?? {};
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.ok(Object.hasOwn(decoded, '__proto__'));
    assert.equal((decoded as { x?: unknown }).x, undefined);
  });
});

describe('fuzz: rabbit-rpc decodes bodies, batches and replies', () => {
  test('decodeBody: a value or INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(body, contentType, (bytes, type) => {
        valueOrRpcError(() => decodeBody(bytes, type, 'INVALID_ARGUMENT'), ['INVALID_ARGUMENT']);
      }),
      { numRuns: RUNS },
    );
  });

  test('readRequestBatch: well-formed entries or INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(body, (bytes) => {
        const entries = valueOrRpcError(() => readRequestBatch(bytes), ['INVALID_ARGUMENT']);
        if (entries instanceof RpcError) return;
        assert.ok(Array.isArray(entries));
        for (const entry of entries as ReturnType<typeof readRequestBatch>) {
          assert.equal(typeof entry.id, 'string');
          assert.ok(entry.deadline === undefined || typeof entry.deadline === 'number');
          assert.ok(entry.method === undefined || typeof entry.method === 'string');
          assert.ok(entry.headers === undefined || typeof entry.headers === 'object');
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('readReplyBatch: outcomes by id, each a value or an RpcError with a code', () => {
    fc.assert(
      fc.property(body, (bytes) => {
        const outcomes = valueOrRpcError(() => readReplyBatch(bytes), ['INTERNAL']);
        if (outcomes instanceof RpcError) return;
        for (const [id, outcome] of outcomes as Array<[string, unknown]>) {
          assert.equal(typeof id, 'string');
          if (outcome instanceof RpcError) assert.ok(ERROR_CODES.includes(outcome.code));
        }
      }),
      { numRuns: RUNS },
    );
  });

  test('decodeReplyOutcome: a value or an RpcError with a code, for any reply or error reply', () => {
    fc.assert(
      fc.property(headers, contentType, body, (replyHeaders, type, bytes) => {
        const message: AmqpMessageLike = {
          properties: {
            headers: replyHeaders,
            ...(type === undefined ? {} : { contentType: type }),
          },
          body: bytes,
          deliveryTag: 1,
          redelivered: false,
          routingKey: 'reply',
        };
        const outcome = timed(() => decodeReplyOutcome(message));
        if (outcome instanceof RpcError) {
          assert.ok(ERROR_CODES.includes(outcome.code));
          assert.equal(typeof outcome.message, 'string');
        }
      }),
      { numRuns: RUNS },
    );
  });
});
