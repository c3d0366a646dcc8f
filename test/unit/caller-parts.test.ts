/** The pure parts of the calling side, without a broker: Batcher, RetryPolicy, PayloadLimit. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RpcError } from '../../src/errors.js';
import { Batcher, MAX_BATCHED_REQUEST_BYTES, type BatchPort } from '../../src/client/batching.js';
import { BatchPeers } from '../../src/client/batch-peers.js';
import { BodyPool } from '../../src/client/body-pool.js';
import { PayloadLimit } from '../../src/client/payload-limit.js';
import { isBatchable, PendingCall, PendingCalls } from '../../src/client/pending.js';
import { RetryPolicy, RetryState, type RetryHost } from '../../src/client/retry.js';
import { BATCH_CONTENT_TYPE, readRequestBatch, replyEntry } from '../../src/protocol/batch.js';
import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON } from '../../src/protocol/names.js';
import type { InstanceDescription } from '../../src/protocol/describe.js';
import type {
  AmqpChannelLike,
  AmqpMessageLike,
  AmqpProperties,
} from '../../src/transport/types.js';

interface Published {
  readonly queue: string;
  readonly body: Uint8Array;
  readonly properties: AmqpProperties;
}

/** A publishing channel that records what is published on it. */
function recordingChannel(): { channel: AmqpChannelLike; published: Published[] } {
  const published: Published[] = [];
  const channel = {
    closed: false,
    connection: undefined,
    basicPublish(_exchange: string, queue: string, body: Uint8Array, properties: AmqpProperties) {
      published.push({ queue, body, properties });
      return Promise.resolve();
    },
  };
  return { channel: channel as unknown as AmqpChannelLike, published };
}

const neverRetry: RetryHost<PendingCall> = {
  isPending: () => false,
  publishLater: () => undefined,
  stopped: true,
};

function callOf(id: string, queue: string, text: string, contentType = CONTENT_TYPE_JSON) {
  const outcomes: unknown[] = [];
  const call = new PendingCall(
    id,
    queue,
    new TextEncoder().encode(text),
    { contentType, expiration: '1000', correlationId: id },
    (value) => outcomes.push(value),
    (error) => outcomes.push(error),
    undefined,
    undefined,
  );
  return { call, outcomes };
}

function batcherWith(maxCalls = 100, maxBytes = 64 * 1024, peers?: BatchPeers) {
  const pending = new PendingCalls(new BodyPool(), new RetryPolicy(neverRetry));
  const alone: PendingCall[] = [];
  const port: BatchPort = {
    replyTo: 'reply-here',
    publishOne: (_channel, call) => alone.push(call),
    repliesOutliveConnection: false,
    dropPublishChannel: () => undefined,
  };
  const limits = { maxCalls, maxBytes, negotiate: peers !== undefined };
  const batcher = new Batcher(limits, peers, pending, port, 'alice');
  const add = (channel: AmqpChannelLike, id: string, queue = 'q') => {
    const made = callOf(id, queue, `{"n":"${id}"}`);
    const now = Date.now();
    made.call.entryParts = batcher.entryPartsFor(made.call, now, now + 1000, undefined, undefined);
    pending.add(made.call);
    // As the caller's channels do: only a call that may travel in a batch goes to the Batcher.
    if (isBatchable(made.call)) batcher.add(channel, made.call);
    else port.publishOne(channel, made.call);
    return made;
  };
  return { batcher, pending, alone, add };
}

const json = (text: string) => new TextEncoder().encode(text);

const tick = () => new Promise<void>((resolve) => queueMicrotask(resolve));

describe('Batcher', () => {
  test('the calls of one tick to one queue go as one batch; a call alone goes as usual', async () => {
    const { pending, alone, add } = batcherWith();
    const { channel, published } = recordingChannel();
    add(channel, 'a');
    add(channel, 'b');
    add(channel, 'c', 'other');
    assert.equal(published.length, 0, 'nothing before the end of the tick');
    await tick();
    assert.equal(published.length, 1);
    const [batch] = published;
    assert.ok(batch);
    assert.equal(batch.queue, 'q');
    assert.equal(batch.properties.contentType, BATCH_CONTENT_TYPE);
    assert.equal(batch.properties.replyTo, 'reply-here');
    assert.equal(batch.properties.userId, 'alice');
    assert.equal(batch.properties.expiration, '1000');
    assert.deepEqual(
      readRequestBatch(batch.body).map((entry) => entry.id),
      ['a', 'b'],
    );
    assert.deepEqual(
      alone.map((call) => call.id),
      ['c'],
    );
    assert.equal(pending.batches.size, 1);
    assert.equal(pending.get('a')?.published, true);
  });

  test('maxCalls and maxBytes send the batch at once', () => {
    const { add } = batcherWith(2);
    const { channel, published } = recordingChannel();
    add(channel, 'a');
    add(channel, 'b');
    assert.equal(published.length, 1, 'full at 2 calls');
    // Entries of 39 bytes: a batch of two is 81 bytes, of three 121.
    const bytes = batcherWith(100, 90);
    const other = recordingChannel();
    bytes.add(other.channel, 'a');
    bytes.add(other.channel, 'b');
    assert.equal(other.published.length, 0);
    bytes.add(other.channel, 'c');
    assert.equal(other.published.length, 1, 'sent when the next entry would not fit');
    const [full] = other.published;
    assert.ok(full);
    assert.equal(full.body.length, 81);
    assert.deepEqual(
      readRequestBatch(full.body).map((entry) => entry.id),
      ['a', 'b'],
    );
  });

  test('calls settled before the end of the tick are left out', async () => {
    const { pending, alone, add } = batcherWith();
    const { channel, published } = recordingChannel();
    add(channel, 'a');
    add(channel, 'b');
    pending.settle('a', new RpcError('CANCELLED', 'gone'));
    await tick();
    assert.equal(published.length, 0);
    assert.deepEqual(
      alone.map((call) => call.id),
      ['b'],
    );
  });

  test('a call alone in its tick is published without writing its batch entry', async () => {
    const { alone, add } = batcherWith();
    const { channel, published } = recordingChannel();
    const lone = add(channel, 'a');
    await tick();
    assert.deepEqual(
      alone.map((call) => call.id),
      ['a'],
    );
    assert.equal(published.length, 0);
    assert.equal(lone.call.entry, undefined, 'no entry written for a call that went alone');
    const first = add(channel, 'b');
    const second = add(channel, 'c');
    await tick();
    assert.equal(published.length, 1);
    assert.equal(typeof first.call.entry, 'string');
    assert.equal(typeof second.call.entry, 'string');
  });

  test('a lone call settled before the end of the tick is not published; calls alone in their queues each go plain', async () => {
    const { pending, alone, add } = batcherWith();
    const { channel, published } = recordingChannel();
    add(channel, 'gone');
    pending.settle('gone', new RpcError('CANCELLED', 'gone'));
    await tick();
    assert.equal(alone.length, 0, 'nothing published for the settled call');
    // The first call is held alone; the second, to another queue, moves it into a batch of
    // its own queue, where it is still alone at the end of the tick.
    add(channel, 'a', 'q1');
    add(channel, 'b', 'q2');
    await tick();
    assert.equal(published.length, 0, 'no batch of one');
    assert.deepEqual(alone.map((call) => call.id).sort(), ['a', 'b']);
    // A later tick starts alone again.
    add(channel, 'c', 'q1');
    add(channel, 'd', 'q1');
    await tick();
    assert.equal(published.length, 1);
    assert.deepEqual(
      readRequestBatch(published[0]?.body ?? null).map((entry) => entry.id),
      ['c', 'd'],
    );
  });

  test('a call on another publishing channel than the lone call of the tick sends that one first', async () => {
    const { alone, add } = batcherWith();
    const first = recordingChannel();
    const second = recordingChannel();
    add(first.channel, 'a');
    add(second.channel, 'b');
    assert.deepEqual(
      alone.map((call) => call.id),
      ['a'],
      'the call of the old channel went at once',
    );
    await tick();
    assert.deepEqual(
      alone.map((call) => call.id),
      ['a', 'b'],
    );
    assert.equal(first.published.length + second.published.length, 0);
  });

  test('only small JSON requests travel in batches', () => {
    const { batcher } = batcherWith(100, 64 * 1024);
    const now = Date.now();
    const deadline = now + 1000;
    const parts = batcher.entryPartsFor(callOf('a', 'q', '1').call, now, deadline, 'm', {});
    assert.deepEqual(parts, { deadline, method: 'm', headers: {} });
    const binary = callOf('b', 'q', '1', CONTENT_TYPE_BINARY).call;
    assert.equal(batcher.entryPartsFor(binary, now, deadline, undefined, undefined), undefined);
    const large = callOf('c', 'q', 'x'.repeat(MAX_BATCHED_REQUEST_BYTES + 1)).call;
    assert.equal(batcher.entryPartsFor(large, now, deadline, undefined, undefined), undefined);
    const half = batcherWith(100, 10);
    assert.equal(
      half.batcher.entryPartsFor(
        callOf('d', 'q', '123456').call,
        now,
        deadline,
        undefined,
        undefined,
      ),
      undefined,
    );
  });

  test('a batch reply settles each of its calls; an error reply fails them all', async () => {
    const { batcher, pending, add } = batcherWith();
    const { channel } = recordingChannel();
    const a = add(channel, 'a');
    const b = add(channel, 'b');
    await tick();
    const [batch] = pending.batches.values();
    assert.ok(batch);
    const body = new TextEncoder().encode(
      `[${replyEntry('a', undefined, undefined, CONTENT_TYPE_JSON, json('1'))},${replyEntry('zz', undefined, undefined, CONTENT_TYPE_JSON, json('2'))}]`,
    );
    const reply = {
      body,
      properties: { contentType: BATCH_CONTENT_TYPE, correlationId: batch.id },
    } as unknown as AmqpMessageLike;
    batcher.onReply(reply, batch);
    assert.deepEqual(a.outcomes, [1]);
    assert.equal(pending.unmatchedReplies, 1, 'an entry of no call of the batch');
    batcher.fail(batch, new RpcError('UNAVAILABLE', 'lost'));
    assert.ok(b.outcomes[0] instanceof RpcError);
    assert.equal(pending.batches.size, 0, 'forgotten once every call settled');
  });
});

/** BatchPeers that learn `servers` rabbit-rpc servers on 'q', each with `prefetch`. */
async function knownPeers(servers: number, prefetch: number): Promise<BatchPeers> {
  const instances = Array.from({ length: servers }, (_, n): InstanceDescription => ({
    describe: 1,
    queue: 'q',
    methods: [],
    library: { name: 'rabbit-rpc', version: '0.1.0' },
    protocol: 1,
    instance: `amq.gen-${n}`,
    startedAt: new Date(n).toISOString(),
    inFlight: 0,
    prefetch,
    counters: { calls: 0, errors: {}, expired: 0 },
    batch: { maxCalls: 1000, maxBytes: 1 << 20 },
  }));
  const peers = new BatchPeers(
    {
      consumerCount: () => Promise.resolve(servers),
      describe: () => Promise.resolve(instances),
    },
    { recheckMs: 60_000, redescribeMs: 60_000, describeTimeoutMs: 100 },
  );
  peers.canBatch('q', Date.now()); // the first call starts no check
  peers.canBatch('q', Date.now());
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(peers.canBatch('q', Date.now()), 'learnt');
  return peers;
}

describe('Batcher with negotiation (D36)', () => {
  test("a tick's calls split into one batch per server, each within the servers' prefetch", async () => {
    const { add } = batcherWith(100, 64 * 1024, await knownPeers(3, 10));
    const { channel, published } = recordingChannel();
    for (let i = 0; i < 12; i++) add(channel, `c${i}`);
    await tick();
    // Without the split the 12 calls would go to one server as one batch.
    assert.deepEqual(
      published.map((batch) => readRequestBatch(batch.body).length),
      [4, 4, 4],
    );
    const many = batcherWith(100, 64 * 1024, await knownPeers(3, 10));
    const other = recordingChannel();
    for (let i = 0; i < 30; i++) many.add(other.channel, `c${i}`);
    // Full at one batch per server of prefetch calls: sent without waiting for the tick.
    assert.deepEqual(
      other.published.map((batch) => readRequestBatch(batch.body).length),
      [10, 10, 10],
    );
    const capped = batcherWith(100, 64 * 1024, await knownPeers(1, 4));
    const third = recordingChannel();
    for (let i = 0; i < 10; i++) capped.add(third.channel, `c${i}`);
    await tick();
    assert.deepEqual(
      third.published.map((batch) => readRequestBatch(batch.body).length),
      [4, 4, 2],
      'never more calls in one batch than a server runs at once',
    );
  });

  test('a queue not known to read batches gets plain requests; a refused batch stops them', async () => {
    const peers = await knownPeers(2, 10);
    const { batcher, pending, alone, add } = batcherWith(100, 64 * 1024, peers);
    const { channel, published } = recordingChannel();
    add(channel, 'x1', 'unknown');
    add(channel, 'x2', 'unknown');
    assert.equal(pending.get('x1')?.entryParts, undefined, 'never batched');
    add(channel, 'a');
    add(channel, 'b');
    await tick();
    assert.equal(published.length, 1);
    const batch = pending.batches.get(published[0]?.properties.correlationId ?? '');
    assert.ok(batch);
    batcher.onReturn(batch, 'q');
    assert.equal(peers.canBatch('q', Date.now()), undefined, 'refused: no more batches to q');
    add(channel, 'c');
    add(channel, 'd');
    await tick();
    assert.equal(published.length, 1);
    assert.deepEqual(
      alone.map((call) => call.id),
      ['x1', 'x2', 'c', 'd'],
    );
    assert.equal(pending.stats.batches, 1);
  });
});

describe('RetryPolicy', () => {
  function policy(stopped = false) {
    const published: PendingCall[] = [];
    let live = true;
    const host: RetryHost<PendingCall> = {
      isPending: () => live,
      publishLater: (call) => published.push(call),
      get stopped() {
        return stopped;
      },
    };
    return { retry: new RetryPolicy(host), published, end: () => (live = false) };
  }

  test('only UNAVAILABLE is retried, and not once the caller has stopped', () => {
    const { call } = callOf('a', 'q', '1');
    const state = new RetryState(Date.now() + 10_000);
    const { retry } = policy();
    assert.equal(retry.retryLater(call, state, new RpcError('INTERNAL', 'no')), false);
    const stopped = policy(true);
    assert.equal(stopped.retry.retryLater(call, state, new RpcError('UNAVAILABLE', 'x')), false);
  });

  test('publishes again after the backoff, with the time left as expiration', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { call } = callOf('a', 'q', '1');
    const state = new RetryState(10_000);
    const { retry, published, end } = policy();
    const error = new RpcError('UNAVAILABLE', 'no route');
    assert.equal(retry.retryLater(call, state, error), true);
    assert.equal(state.attempts, 1);
    assert.equal(state.lastError, error);
    assert.equal(retry.retryLater(call, state, error), true, 'already scheduled');
    assert.equal(state.attempts, 1);
    t.mock.timers.tick(24);
    assert.equal(published.length, 0, 'at least half the first 50 ms');
    t.mock.timers.tick(26);
    assert.deepEqual(published, [call]);
    assert.equal(retry.retries, 1);
    assert.equal(call.properties.expiration, String(10_000 - 50));
    assert.equal(state.timer, undefined);
    // A call settled meanwhile is not published again.
    assert.equal(retry.retryLater(call, state, error), true);
    end();
    t.mock.timers.tick(1_000);
    assert.equal(published.length, 1);
    assert.equal(retry.retries, 1);
  });

  test('no time left for another attempt: the deadline ends the call', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
    const { call } = callOf('a', 'q', '1');
    const state = new RetryState(10);
    const { retry, published } = policy();
    assert.equal(retry.retryLater(call, state, new RpcError('UNAVAILABLE', 'x')), true);
    assert.equal(state.attempts, 0);
    assert.equal(state.timer, undefined);
    t.mock.timers.tick(1_000);
    assert.equal(published.length, 0);
  });
});

describe('PayloadLimit', () => {
  const sizeError = new Error(
    'PRECONDITION_FAILED - message size 2000 is larger than configured max size 1000',
  );

  test('check refuses a body over the limit with RESOURCE_EXHAUSTED', () => {
    const limit = new PayloadLimit(100);
    limit.check(100);
    assert.throws(
      () => limit.check(101),
      (error: unknown) => {
        assert.ok(error instanceof RpcError);
        assert.equal(error.code, 'RESOURCE_EXHAUSTED');
        assert.match(error.message, /101 bytes exceeds maxPayloadBytes \(100\)/);
        return true;
      },
    );
  });

  test("learns the broker's limit and tells the culprit from the innocent", () => {
    const limit = new PayloadLimit(1_000_000);
    const { channel } = recordingChannel();
    assert.equal(limit.learn(new Error('connection closed'), channel, 10), 'other');
    assert.equal(limit.maxBytes, 1_000_000);
    // Published before the culprit on this channel: taken by the broker.
    assert.equal(limit.learn(sizeError, channel, 10), 'taken');
    assert.equal(limit.maxBytes, 1000, 'lowered to the broker limit');
    assert.equal(limit.learn(sizeError, channel, 2000), 'culprit');
    // After the culprit: discarded by the broker, safe to send again.
    assert.equal(limit.learn(sizeError, channel, 10), 'discarded');
    assert.equal(limit.learn(sizeError, recordingChannel().channel, 10), 'taken');
    assert.throws(() => limit.check(1001), /RESOURCE_EXHAUSTED|exceeds/);
    const refusal = PayloadLimit.refusal(sizeError);
    assert.equal(refusal.code, 'RESOURCE_EXHAUSTED');
    assert.match(refusal.message, /^the broker refused the request: /);
  });
});
