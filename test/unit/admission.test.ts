// The server's one admission path (src/server/admission.ts), its early cancels
// (src/server/cancels.ts) and the describe bound (src/server/describe.ts): no broker.
// Silent drops (expired deadline, early cancel) come before refusals with a reply
// (UNAUTHENTICATED, RESOURCE_EXHAUSTED, INVALID_ARGUMENT); poison is decided per refusal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AmqpMessageLike, AmqpProperties } from '../../src/transport/types.js';
import type { RpcError } from '../../src/errors.js';
import { batchBody, requestEntry } from '../../src/protocol/batch.js';
import {
  admitBatch,
  admitCall,
  admitEnvelope,
  isExpired,
  Refusal,
} from '../../src/server/admission.js';
import {
  cancelRunning,
  EarlyCancels,
  replyAddress,
  sentBy,
  type CancelTarget,
} from '../../src/server/cancels.js';
import { DescribeBudget } from '../../src/server/describe.js';

function message(
  body: string | Uint8Array | null,
  properties: AmqpProperties = {},
): AmqpMessageLike {
  return {
    properties: { contentType: 'application/json', ...properties },
    body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
    deliveryTag: 1,
    redelivered: false,
    routingKey: 'q',
  };
}

const NOW = 1_000_000;
const clock = () => NOW;

function refusal(outcome: unknown): Refusal {
  assert.ok(outcome instanceof Refusal, `expected a Refusal, got ${String(outcome)}`);
  return outcome;
}

describe('admitEnvelope: the silent drops', () => {
  test('no deadline, a future one: admitted; a passed one (or now): expired', () => {
    const m = message('1');
    assert.equal(admitEnvelope(undefined, 'c1', m, new EarlyCancels(), clock), undefined);
    assert.equal(admitEnvelope(NOW + 1, 'c1', m, new EarlyCancels(), clock), undefined);
    assert.equal(admitEnvelope(NOW, 'c1', m, new EarlyCancels(), clock), 'expired');
    assert.equal(admitEnvelope(NOW - 1, 'c1', m, undefined, clock), 'expired');
    assert.equal(isExpired(undefined, clock), false);
    assert.equal(isExpired(NOW, clock), true);
  });

  test('a cancel that came first drops the request once; other ids, users or addresses do not', () => {
    const cancels = new EarlyCancels();
    cancels.add('c1', { userId: 'alice', replyTo: 'amq.gen-1' });
    const m = message('1', { correlationId: 'c1', userId: 'alice', replyTo: 'amq.gen-1' });
    assert.equal(admitEnvelope(undefined, 'c2', m, cancels, clock), undefined);
    const bob = message('1', { correlationId: 'c1', userId: 'bob', replyTo: 'amq.gen-1' });
    assert.equal(admitEnvelope(undefined, 'c1', bob, cancels, clock), undefined);
    const elsewhere = message('1', { correlationId: 'c1', userId: 'alice', replyTo: 'amq.gen-2' });
    assert.equal(admitEnvelope(undefined, 'c1', elsewhere, cancels, clock), undefined);
    assert.equal(admitEnvelope(undefined, 'c1', m, cancels, clock), 'cancelled');
    assert.equal(cancels.size, 0, 'forgotten once used');
    assert.equal(admitEnvelope(undefined, 'c1', m, cancels, clock), undefined);
  });

  test('a cancel naming no reply address matches any; no correlation id is never cancelled', () => {
    const cancels = new EarlyCancels();
    cancels.add('c1', { userId: undefined, replyTo: undefined });
    const m = message('1', { correlationId: 'c1', replyTo: 'amq.gen-9' });
    assert.equal(admitEnvelope(undefined, undefined, m, cancels, clock), undefined);
    assert.equal(admitEnvelope(undefined, 'c1', m, cancels, clock), 'cancelled');
  });

  test('order: expired before cancelled (the cancel stays for a redelivery); broadcasts skip the lookup', () => {
    const cancels = new EarlyCancels();
    cancels.add('c1', { userId: undefined, replyTo: undefined });
    const m = message('1', { correlationId: 'c1' });
    assert.equal(admitEnvelope(NOW - 1, 'c1', m, cancels, clock), 'expired');
    assert.equal(cancels.size, 1);
    assert.equal(admitEnvelope(undefined, 'c1', m, undefined, clock), undefined);
    assert.equal(cancels.size, 1);
  });
});

describe('admitCall: the refusals', () => {
  test('admitted: the decoded payload, as is (JSON, text, binary, empty)', () => {
    assert.deepEqual(admitCall(message('{"a":1}'), false, 100), { a: 1 });
    assert.equal(admitCall(message('hi', { contentType: 'text/plain' }), false, 100), 'hi');
    const binary = admitCall(
      message(new Uint8Array([1, 2]), { contentType: 'application/octet-stream' }),
      false,
      100,
    );
    assert.ok(Buffer.isBuffer(binary));
    assert.equal(admitCall(message(null), false, 100), undefined);
  });

  test('no user_id under requireUserId: UNAUTHENTICATED, not poison', () => {
    const r = refusal(admitCall(message('1'), true, 100));
    assert.equal(r.error.code, 'UNAUTHENTICATED');
    assert.equal(r.poison, false);
    assert.equal(admitCall(message('1', { userId: 'alice' }), true, 100), 1);
  });

  test('over maxPayloadBytes: RESOURCE_EXHAUSTED, poison; at the limit: admitted', () => {
    const r = refusal(admitCall(message('12345'), false, 4));
    assert.equal(r.error.code, 'RESOURCE_EXHAUSTED');
    assert.match(r.error.message, /request of 5 bytes exceeds maxPayloadBytes \(4\)/);
    assert.equal(r.poison, true);
    assert.equal(admitCall(message('1234'), false, 4), 1234);
  });

  test('undecodable (bad JSON, unknown content type): INVALID_ARGUMENT, poison', () => {
    for (const m of [message('{'), message('1', { contentType: 'application/xml' })]) {
      const r = refusal(admitCall(m, false, 100));
      assert.equal(r.error.code, 'INVALID_ARGUMENT');
      assert.equal(r.poison, true);
    }
  });

  test('order: user id, then size, then decoding', () => {
    const bad = message('{{{{{{', {});
    assert.equal(refusal(admitCall(bad, true, 2)).error.code, 'UNAUTHENTICATED');
    assert.equal(refusal(admitCall(bad, false, 2)).error.code, 'RESOURCE_EXHAUSTED');
    assert.equal(refusal(admitCall(bad, false, 100)).error.code, 'INVALID_ARGUMENT');
  });
});

describe('admitBatch: the refusals of a batch as a whole', () => {
  const BATCH = 'application/vnd.rabbit-rpc.batch+json';
  const limits = { maxBytes: 1_000, maxEntries: 2 };
  const entry = (id: string) =>
    requestEntry(id, NOW + 1, undefined, undefined, new TextEncoder().encode('1'));
  const batch = (entries: string[], properties: AmqpProperties = {}) =>
    message(batchBody(entries), { contentType: BATCH, ...properties });

  test('admitted: its entries', () => {
    const entries = admitBatch(batch([entry('a'), entry('b')]), false, 10_000, limits);
    assert.ok(Array.isArray(entries));
    assert.deepEqual(
      entries.map((e) => [e.id, e.payload]),
      [
        ['a', 1],
        ['b', 1],
      ],
    );
  });

  test('each refusal with its poison: only a malformed batch is poison', () => {
    const cases: Array<[Refusal, string, boolean]> = [
      [refusal(admitBatch(batch([entry('a')]), true, 10_000, limits)), 'UNAUTHENTICATED', false],
      [refusal(admitBatch(batch([entry('a')]), false, 10_000, false)), 'UNIMPLEMENTED', false],
      [refusal(admitBatch(batch([entry('a')]), false, 10, limits)), 'RESOURCE_EXHAUSTED', false],
      [
        refusal(admitBatch(message('[1]', { contentType: BATCH }), false, 10_000, limits)),
        'INVALID_ARGUMENT',
        true,
      ],
      [
        refusal(admitBatch(batch([entry('a'), entry('b'), entry('c')]), false, 10_000, limits)),
        'RESOURCE_EXHAUSTED',
        false,
      ],
    ];
    for (const [r, code, poison] of cases) {
      assert.equal(r.error.code, code);
      assert.equal(r.poison, poison, code);
    }
  });

  test('bytes: the smaller of maxPayloadBytes and the batch limit', () => {
    const m = batch([entry('a')]);
    const size = m.body?.length ?? 0;
    assert.equal(refusal(admitBatch(m, false, size - 1, limits)).error.code, 'RESOURCE_EXHAUSTED');
    const small = { maxBytes: size - 1, maxEntries: 2 };
    assert.match(
      refusal(admitBatch(m, false, 10_000, small)).error.message,
      /exceeds this server's limit/,
    );
    assert.ok(Array.isArray(admitBatch(m, false, size, { maxBytes: size, maxEntries: 2 })));
  });

  test('order: user id, batch: false, bytes, malformed, entries', () => {
    const malformed = message('[1,2,3]', { contentType: BATCH });
    assert.equal(refusal(admitBatch(malformed, true, 1, false)).error.code, 'UNAUTHENTICATED');
    assert.equal(refusal(admitBatch(malformed, false, 1, false)).error.code, 'UNIMPLEMENTED');
    assert.equal(refusal(admitBatch(malformed, false, 1, limits)).error.code, 'RESOURCE_EXHAUSTED');
    assert.equal(refusal(admitBatch(malformed, false, 100, limits)).error.code, 'INVALID_ARGUMENT');
  });
});

describe('cancels', () => {
  function running(correlationId: string, userId?: string, replyTo?: string) {
    const aborted: RpcError[] = [];
    const target: CancelTarget & { aborted: RpcError[] } = {
      correlationId,
      userId,
      replyTo,
      cancelledByCaller: false,
      aborted,
      abort: (reason) => void aborted.push(reason),
    };
    return target;
  }

  test('a running request is aborted (CANCELLED) only by its own user and reply address', () => {
    const a = running('c1', 'alice', 'amq.gen-1');
    assert.equal(cancelRunning([a], 'c1', { userId: 'bob', replyTo: undefined }), false);
    assert.equal(cancelRunning([a], 'c1', { userId: 'alice', replyTo: 'amq.gen-2' }), false);
    assert.equal(cancelRunning([a], 'c2', { userId: 'alice', replyTo: undefined }), false);
    assert.equal(a.aborted.length, 0);
    assert.equal(cancelRunning([a], 'c1', { userId: 'alice', replyTo: 'amq.gen-1' }), true);
    assert.equal(a.cancelledByCaller, true);
    assert.equal(a.aborted[0]?.code, 'CANCELLED');
  });

  test('Direct Reply-to: the caller names the pseudo-queue, the server sees it with a token', () => {
    assert.equal(replyAddress('amq.rabbitmq.reply-to.g1h2AA'), 'amq.rabbitmq.reply-to');
    assert.equal(replyAddress(undefined), '');
    const request = { userId: undefined, replyTo: 'amq.rabbitmq.reply-to.g1h2AA' };
    assert.equal(sentBy(request, { userId: 'x', replyTo: 'amq.rabbitmq.reply-to' }), true);
    assert.equal(sentBy(request, { userId: undefined, replyTo: 'amq.gen-1' }), false);
  });

  test('the early cancels are bounded: the oldest is forgotten first', () => {
    const cancels = new EarlyCancels(3);
    for (const id of ['a', 'b', 'c', 'd'])
      cancels.add(id, { userId: undefined, replyTo: undefined });
    assert.equal(cancels.size, 3);
    const m = (id: string) => message('1', { correlationId: id });
    assert.equal(cancels.take('a', m('a')), false, 'the oldest went');
    for (const id of ['b', 'c', 'd']) assert.equal(cancels.take(id, m(id)), true, id);
  });

  test('keys cannot collide across (user, address, id) triples', () => {
    const cancels = new EarlyCancels();
    cancels.add('c', { userId: 'a', replyTo: 'b1:' });
    const other = message('1', { correlationId: 'c', userId: 'a1:b', replyTo: '' });
    assert.equal(cancels.take('c', other), false);
  });
});

describe('DescribeBudget', () => {
  test('at most perSecond answers in a window; one log line per window of drops', () => {
    let now = 0;
    const budget = new DescribeBudget(3, () => now);
    const results = Array.from({ length: 6 }, () => budget.take());
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.first ? 'first-drop' : 'drop')),
      ['ok', 'ok', 'ok', 'first-drop', 'drop', 'drop'],
    );
    now = 999;
    assert.equal(budget.take().ok, false);
    now = 1_000;
    assert.equal(budget.take().ok, true, 'a new window');
    assert.equal(budget.take().ok, true);
    assert.equal(budget.take().ok, true);
    assert.deepEqual(budget.take(), { ok: false, first: true });
  });
});
