/**
 * fast-check arbitraries for what a hostile peer can put in a message: property values of
 * any type (including objects whose `valueOf` and `toString` are not functions), rpc-*
 * headers with wrong types, content types, bodies that are almost JSON, almost batches.
 */
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { BATCH_CONTENT_TYPE } from '../../src/protocol/batch.js';
import type { AmqpField } from '../../src/transport/types.js';

/** An object no `Number()`, `String()` or template literal can convert: both hooks are data. */
export const unconvertible = fc.constant({ valueOf: 1, toString: 1 });

/** A header value as an AMQP table can carry it, plus what the memory broker passes on. */
export const fieldValue: fc.Arbitrary<AmqpField> = fc.letrec<{ value: AmqpField }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 16 }),
    unconvertible,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

const RPC_HEADERS = [
  'rpc-deadline',
  'rpc-status',
  'rpc-message',
  'rpc-stack',
  'rpc-stream',
  'rpc-stream-seq',
  'rpc-stream-window',
  'rpc-control',
  'rpc-control-queue',
  'rpc-credit',
  'rpc-reply-to',
  '__proto__',
  'constructor',
] as const;

/** Values a peer may put in rpc-* headers: the right type, the wrong one, or out of range. */
const rpcHeaderValue: fc.Arbitrary<AmqpField> = fc.oneof(
  fieldValue,
  fc.constantFrom(
    'cancel',
    'credit',
    'item',
    'end',
    'INTERNAL',
    'NOT_A_CODE',
    'toString',
    '__proto__',
  ),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, NaN),
  fc.constantFrom(Infinity, -Infinity),
  fc.constantFrom(2n ** 63n - 1n, -(2n ** 63n)),
  // A deadline far ahead: more than a Node timer can wait (issue 13, defect 7).
  fc.integer({ min: 2 ** 31, max: 2 ** 45 }).map((ms) => Date.now() + ms),
);

export const headers: fc.Arbitrary<Record<string, AmqpField>> = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...RPC_HEADERS), rpcHeaderValue, { maxKeys: 5 }),
    fc.dictionary(fc.string({ maxLength: 10 }), fieldValue, { maxKeys: 3 }),
  )
  .map(([rpc, other]) => ({ ...other, ...rpc }));

export const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/octet-stream',
    'text/plain',
    BATCH_CONTENT_TYPE,
    '',
    ';',
    'image/png',
  ),
  fc.string({ maxLength: 20 }),
);

/** JSON-ish text: valid JSON, truncated JSON, deep nests, and plain garbage. */
const jsonish: fc.Arbitrary<string> = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.json({ maxDepth: 4 }).map((text) => text.slice(0, Math.floor(text.length / 2))),
  fc.integer({ min: 1, max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  fc.integer({ min: 1, max: 20_000 }).map((n) => '{"a":'.repeat(n) + '1' + '}'.repeat(n)),
  fc.string({ maxLength: 64 }),
);

/** A batch body: arrays of entries of the right and the wrong shapes. */
const batchish: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.tuple(
        fc.oneof(fc.string({ maxLength: 12 }), fc.integer()),
        fc.oneof(fc.integer(), fc.double(), fc.constant(null), fc.string()),
        fc.oneof(fc.string({ maxLength: 8 }), fc.constant(null)),
        fc.oneof(fc.constant(null), fc.jsonValue({ maxDepth: 2 })),
        fc.jsonValue({ maxDepth: 3 }),
      ),
      fc.jsonValue({ maxDepth: 3 }),
    ),
    { maxLength: 8 },
  )
  .map((entries) => JSON.stringify(entries));

export const body: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 256 }),
  jsonish.map((text) => Buffer.from(text)),
  batchish.map((text) => Buffer.from(text)),
  fc.constant(new Uint8Array(0)),
);
