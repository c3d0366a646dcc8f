// Which queues a caller batches to by default (src/client/batch-peers.ts, D36): only those
// whose every consumer said it reads batches. Fake ports: no broker involved.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BatchPeers,
  connectionPorts,
  MAX_BATCH_PEERS,
  planFor,
  type BatchPeerPorts,
} from '../../src/client/batch-peers.js';
import type { InstanceDescription } from '../../src/protocol/describe.js';
import type { MultiReply } from '../../src/client/multi-reply.js';
import type { LazyChannel } from '../../src/transport/lazy-channel.js';
import type { AmqpChannelLike } from '../../src/transport/types.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function instance(
  queue: string,
  n: number,
  batch: InstanceDescription['batch'],
  prefetch = 10,
): InstanceDescription {
  return {
    describe: 1,
    queue,
    methods: [],
    library: { name: 'rabbit-rpc', version: '0.1.0' },
    protocol: 1,
    instance: `amq.gen-${n}`,
    startedAt: new Date(n).toISOString(),
    inFlight: 0,
    prefetch,
    counters: { calls: 0, errors: {}, expired: 0 },
    ...(batch === undefined ? {} : { batch }),
  };
}

const READS = { maxCalls: 1000, maxBytes: 1 << 20 };

/** Ports over a mutable picture of the broker; each check's end can be awaited. */
function fakePorts(state: { consumers: number; instances: InstanceDescription[] }) {
  let checks = 0;
  let settled = deferred();
  const ports: BatchPeerPorts = {
    consumerCount: () => Promise.resolve(state.consumers),
    describe: (_queue, max) => {
      checks++;
      const answers = state.instances.slice(0, max);
      // The check ends after the count that follows the answers: a macrotask later.
      setImmediate(() => settled.resolve());
      return Promise.resolve(answers);
    },
  };
  return {
    ports,
    describes: () => checks,
    async checked(): Promise<void> {
      await settled.promise;
      settled = deferred();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

const OPTIONS = { recheckMs: 1_000, redescribeMs: 10_000, describeTimeoutMs: 100 };

describe('BatchPeers', () => {
  test('unknown is "not now", never waits; eligible once every consumer reads batches', async () => {
    const state = { consumers: 2, instances: [instance('q', 1, READS), instance('q', 2, READS)] };
    const fake = fakePorts(state);
    const peers = new BatchPeers(fake.ports, OPTIONS);
    // The first call starts nothing (a lone call never pays for a check); the second does.
    assert.equal(peers.canBatch('q', 0), undefined);
    assert.equal(fake.describes(), 0);
    assert.equal(peers.canBatch('q', 0), undefined);
    await fake.checked();
    assert.deepEqual(peers.canBatch('q', 1), { servers: 2, maxCalls: 10, maxBytes: 1 << 20 });
  });

  test('a queue with more consumers than MAX_BATCH_PEERS is not described, not batched', async () => {
    const many = MAX_BATCH_PEERS + 1;
    const instances = Array.from({ length: many }, (_, n) => instance('q', n, READS));
    const fake = fakePorts({ consumers: many, instances });
    const peers = new BatchPeers(fake.ports, OPTIONS);
    peers.canBatch('q', 0);
    peers.canBatch('q', 0);
    // The count is asked and answered within a few turns of the event loop.
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fake.describes(), 0);
    assert.equal(peers.canBatch('q', 1), undefined);
  });

  test('a consumer that does not answer (foreign) or answers without batch: not batched', async () => {
    // Three consumers, two rabbit-rpc answers: the third is someone else's.
    const foreign = fakePorts({
      consumers: 3,
      instances: [instance('q', 1, READS), instance('q', 2, READS)],
    });
    const peers = new BatchPeers(foreign.ports, OPTIONS);
    peers.canBatch('q', 0);
    peers.canBatch('q', 0);
    await foreign.checked();
    assert.equal(peers.canBatch('q', 1), undefined);
    // An older server (or batch: false) answers without the advertisement.
    const older = fakePorts({
      consumers: 2,
      instances: [instance('q', 1, READS), instance('q', 2, undefined)],
    });
    const peers2 = new BatchPeers(older.ports, OPTIONS);
    peers2.canBatch('q', 0);
    peers2.canBatch('q', 0);
    await older.checked();
    assert.equal(peers2.canBatch('q', 1), undefined);
  });

  test('re-checked while used: a foreign consumer that joins stops batching', async () => {
    const state = { consumers: 1, instances: [instance('q', 1, READS)] };
    const fake = fakePorts(state);
    const peers = new BatchPeers(fake.ports, OPTIONS);
    peers.canBatch('q', 0);
    peers.canBatch('q', 0);
    await fake.checked();
    assert.notEqual(peers.canBatch('q', 10), undefined);
    state.consumers = 2; // a pika server joins; it never answers describes
    // Before the interval nothing is asked again.
    assert.notEqual(peers.canBatch('q', 999), undefined);
    assert.equal(fake.describes(), 1);
    peers.canBatch('q', 1_000);
    await fake.checked();
    assert.equal(peers.canBatch('q', 1_001), undefined);
    assert.equal(fake.describes(), 2);
  });

  test('an unchanged count is not described again until redescribeMs', async () => {
    const state = { consumers: 1, instances: [instance('q', 1, READS)] };
    const fake = fakePorts(state);
    const peers = new BatchPeers(fake.ports, OPTIONS);
    peers.canBatch('q', 0);
    peers.canBatch('q', 0);
    await fake.checked();
    peers.canBatch('q', 1_000);
    // Only the count was read: wait for that check to end (a microtask or two).
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(fake.describes(), 1);
    assert.notEqual(peers.canBatch('q', 1_001), undefined);
    peers.canBatch('q', 10_000);
    await fake.checked();
    assert.equal(fake.describes(), 2);
  });

  test('refused(): not batched at once; the next call starts a new check', async () => {
    const state = { consumers: 1, instances: [instance('q', 1, READS)] };
    const fake = fakePorts(state);
    const peers = new BatchPeers(fake.ports, OPTIONS);
    peers.canBatch('q', 0);
    peers.canBatch('q', 0);
    await fake.checked();
    peers.refused('q');
    assert.equal(peers.canBatch('q', 1), undefined);
    await fake.checked();
    assert.notEqual(peers.canBatch('q', 2), undefined);
  });

  test('a failed check (no such queue) means not batched, and is said', async () => {
    const failures: string[] = [];
    const gone = deferred();
    const peers = new BatchPeers(
      {
        consumerCount: () => Promise.reject(new Error('NOT_FOUND')),
        describe: () => Promise.resolve([]),
      },
      {
        ...OPTIONS,
        onCheckFailed: (queue) => {
          failures.push(queue);
          gone.resolve();
        },
      },
    );
    peers.canBatch('q', 0);
    assert.equal(peers.canBatch('q', 0), undefined);
    await gone.promise;
    assert.deepEqual(failures, ['q']);
    assert.equal(peers.canBatch('q', 1), undefined);
  });

  test('a count that changes while servers answer: inconclusive, not batched', async () => {
    let counts = 0;
    const done = deferred();
    const peers = new BatchPeers(
      {
        consumerCount: () => Promise.resolve(++counts === 1 ? 1 : 2),
        describe: () => {
          setImmediate(() => done.resolve());
          return Promise.resolve([instance('q', 1, READS)]);
        },
      },
      OPTIONS,
    );
    peers.canBatch('q', 0);
    peers.canBatch('q', 0);
    await done.promise;
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(counts, 2);
    assert.equal(peers.canBatch('q', 1), undefined);
  });
});

describe('planFor', () => {
  test('smallest limits win; prefetch caps a batch; other queues and repeats do not count', () => {
    const plan = planFor(
      'q',
      [
        instance('q', 1, { maxCalls: 50, maxBytes: 4096 }, 100),
        instance('q', 2, { maxCalls: 500, maxBytes: 8192 }, 8),
      ],
      2,
    );
    assert.deepEqual(plan, { servers: 2, maxCalls: 8, maxBytes: 4096 });
    assert.equal(planFor('q', [instance('other', 1, READS)], 1), undefined);
    assert.equal(planFor('q', [], 0), undefined);
    // More answers than consumers is not "every consumer".
    assert.equal(planFor('q', [instance('q', 1, READS), instance('q', 2, READS)], 1), undefined);
  });
});

describe('connectionPorts', () => {
  test("a describe is published on the peek channel, not the caller's: a refusal closes only that", async () => {
    const peek = { closed: false } as unknown as AmqpChannelLike;
    const peekChannel = {
      open: () => Promise.resolve(peek),
      forget: () => undefined,
    } as unknown as LazyChannel;
    const sent: MultiReply[] = [];
    const ports = connectionPorts({
      peekChannel,
      exchangeExists: () => Promise.resolve(true),
      call: (_queue, _timeoutMs, multi) => {
        sent.push(multi);
        return Promise.resolve(multi.onDeadline?.());
      },
    });
    assert.deepEqual(await ports.describe('q', 2, 100), []);
    assert.equal(sent.length, 1);
    const multi = sent[0];
    assert.ok(multi);
    assert.equal(multi.internal, true);
    const publishChannel = multi.publishChannel;
    assert.ok(publishChannel, 'the describe names a channel of its own');
    assert.equal(await publishChannel(), peek);
  });
});
