// Each wire-format pair of src/protocol/, written with one half and read with the other.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import { RpcError } from '../../src/errors.js';
import { decodeReplyOutcome, encodeErrorReply } from '../../src/protocol/error-reply.js';
import { readDeadline } from '../../src/protocol/deadline.js';
import { MAX_STREAM_WINDOW, readWindow } from '../../src/protocol/stream.js';
import {
  batchBody,
  entryMessage,
  readReplyBatch,
  readRequestBatch,
  replyEntry,
  requestEntry,
} from '../../src/protocol/batch.js';
import { controlProperties, readControlMessage } from '../../src/protocol/control.js';
import type { AmqpMessageLike } from '../../src/transport/types.js';

function reply(body: Uint8Array, contentType: string, headers = {}): AmqpMessageLike {
  return {
    properties: { contentType, headers },
    body,
    deliveryTag: 1,
    redelivered: false,
    routingKey: 'q',
  };
}

describe('error replies', () => {
  test('code, message and details survive the trip', () => {
    const error = new RpcError('NOT_FOUND', 'no such order', { details: { id: 7 } });
    const [body, headers] = encodeErrorReply(error, undefined);
    const outcome = decodeReplyOutcome(reply(body.body, body.contentType, headers));
    assert.ok(outcome instanceof RpcError);
    assert.equal(outcome.code, 'NOT_FOUND');
    assert.equal(outcome.message, 'no such order');
    assert.deepEqual(outcome.details, { id: 7 });
  });

  test('long messages and stacks are cut to fit one frame', () => {
    const [, headers] = encodeErrorReply(
      new RpcError('INTERNAL', 'x'.repeat(10_000)),
      'y'.repeat(10_000),
    );
    assert.ok((headers['rpc-message'] as string).length <= 2_001);
    assert.ok((headers['rpc-stack'] as string).length <= 2_001);
  });

  test('details that cannot be encoded leave an empty body, still an error', () => {
    const details: Record<string, unknown> = {};
    details.self = details;
    const [body, headers] = encodeErrorReply(
      new RpcError('ABORTED', 'cyclic', { details }),
      undefined,
    );
    assert.equal(body.body.byteLength, 0);
    const outcome = decodeReplyOutcome(reply(body.body, body.contentType, headers));
    assert.ok(outcome instanceof RpcError);
    assert.equal(outcome.code, 'ABORTED');
    assert.equal(outcome.details, undefined);
  });

  test('an unknown status reads as UNKNOWN; a reply without one is the payload', () => {
    const foreign = decodeReplyOutcome(
      reply(new Uint8Array(0), 'application/json', { 'rpc-status': 'NOPE' }),
    );
    assert.ok(foreign instanceof RpcError);
    assert.equal(foreign.code, 'UNKNOWN');
    assert.deepEqual(decodeReplyOutcome(reply(Buffer.from('{"ok":1}'), 'application/json')), {
      ok: 1,
    });
  });
});

describe('deadlines', () => {
  test('numbers and AMQP longs are read; anything else is no deadline', () => {
    assert.equal(readDeadline({ 'rpc-deadline': 1_700_000_000_000 }), 1_700_000_000_000);
    assert.equal(readDeadline({ 'rpc-deadline': 1_700_000_000_000n }), 1_700_000_000_000);
    assert.equal(readDeadline({ 'rpc-deadline': 'soon' }), undefined);
    assert.equal(readDeadline({ 'rpc-deadline': Number.NaN }), undefined);
    assert.equal(readDeadline(undefined), undefined);
  });
});

describe('stream windows', () => {
  test('a window is clamped to 1..MAX_STREAM_WINDOW; none means no stream', () => {
    assert.equal(readWindow({ 'rpc-stream-window': 16 }), 16);
    assert.equal(readWindow({ 'rpc-stream-window': 0 }), 1);
    assert.equal(readWindow({ 'rpc-stream-window': 1e9 }), MAX_STREAM_WINDOW);
    assert.equal(readWindow({ 'rpc-stream-window': 4n }), 4);
    assert.equal(readWindow({}), undefined);
  });
});

describe('batches', () => {
  test('a request entry becomes the message it stands for', () => {
    const body = batchBody([
      requestEntry('c1', 1_700_000_000_000, 'add', { 'x-trace': 't' }, Buffer.from('[1,2]')),
    ]);
    const [entry] = readRequestBatch(body);
    assert.ok(entry);
    const batch: AmqpMessageLike = {
      properties: { contentType: 'application/vnd.rabbit-rpc.batch+json', replyTo: 'r', type: 'x' },
      body,
      deliveryTag: 9,
      redelivered: false,
      routingKey: 'q',
    };
    const message = entryMessage(batch, entry);
    assert.equal(message.properties.correlationId, 'c1');
    assert.equal(message.properties.type, 'add');
    assert.equal(message.properties.replyTo, 'r');
    assert.equal(readDeadline(message.properties.headers), 1_700_000_000_000);
    assert.equal(message.properties.headers?.['x-trace'], 't');
    assert.equal(message.deliveryTag, 9);
    assert.deepEqual(entry.payload, [1, 2]);
  });

  test('reply entries carry values and errors back', () => {
    const body = batchBody([
      replyEntry('a', undefined, undefined, 'application/json', Buffer.from('{"n":1}')),
      replyEntry('b', 'NOT_FOUND', 'gone', 'application/json', new Uint8Array(0)),
      replyEntry('c', undefined, undefined, 'application/octet-stream', Buffer.from([1, 2])),
    ]);
    const [[, a], [, b], [, c]] = readReplyBatch(body) as [
      [string, unknown],
      [string, unknown],
      [string, unknown],
    ];
    assert.deepEqual(a, { n: 1 });
    assert.ok(b instanceof RpcError);
    assert.equal(b.code, 'NOT_FOUND');
    assert.deepEqual([...(c as Buffer)], [1, 2]);
  });
});

describe('control messages', () => {
  const received = (properties: AmqpMessageLike['properties']): AmqpMessageLike => ({
    properties,
    body: null,
    deliveryTag: 1,
    redelivered: false,
    routingKey: 'orders',
  });

  test('a cancel names the call, its user and its reply address', () => {
    const read = readControlMessage(received(controlProperties('c1', 'alice', 'rpc.reply.x')));
    assert.deepEqual(read, {
      kind: 'cancel',
      correlationId: 'c1',
      from: { userId: 'alice', replyTo: 'rpc.reply.x' },
    });
  });

  test('a credit grant carries its total; a bad total is no message', () => {
    const read = readControlMessage(received(controlProperties('c2', undefined, 'r', 40)));
    assert.deepEqual(read, {
      kind: 'credit',
      correlationId: 'c2',
      total: 40,
      from: { userId: undefined, replyTo: 'r' },
    });
    const bad = controlProperties('c2', undefined, 'r', 40);
    bad.headers = { ...bad.headers, 'rpc-credit': 'lots' };
    assert.equal(readControlMessage(received(bad)), undefined);
  });

  test('no control header is a broadcast request; describe is describe; unknown kinds are nothing', () => {
    assert.deepEqual(readControlMessage(received({})), { kind: 'broadcast' });
    assert.deepEqual(readControlMessage(received({ headers: { 'rpc-control': 'describe' } })), {
      kind: 'describe',
    });
    assert.equal(
      readControlMessage(received({ correlationId: 'c', headers: { 'rpc-control': 'explode' } })),
      undefined,
    );
    assert.equal(readControlMessage(received({ headers: { 'rpc-control': 'cancel' } })), undefined);
  });
});
