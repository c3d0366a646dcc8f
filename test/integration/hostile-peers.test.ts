// Issue 13: what one peer with ordinary rights can do to a server or a caller by what it
// publishes. Crafted batches and broadcast bursts do not bypass `prefetch`; call ids cannot
// be guessed; forged stream credit is clamped; a server that breaks the stream's rules
// fails the stream with a code. Users and permissions: test/slow/hostile-users.test.ts.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import { RpcError } from '../../src/index.js';
import { DESCRIBE_ANSWERS_PER_SECOND } from '../../src/server/describe.js';
import {
  AMQP_URL,
  collectReplies,
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
} from '../helpers.js';

failOnUnhandled();

const BATCH = 'application/vnd.rabbit-rpc.batch+json';

async function rawChannel(t: { after: (fn: () => Promise<void>) => void }): Promise<AMQPChannel> {
  const client = new AMQPClient(AMQP_URL);
  await client.connect();
  t.after(() => client.close());
  return client.channel();
}

/** Counts handlers running at once; each waits for the next macrotask before answering. */
function concurrency() {
  let active = 0;
  let max = 0;
  let runs = 0;
  return {
    get max() {
      return max;
    },
    get runs() {
      return runs;
    },
    async run<T>(value: T): Promise<T> {
      active++;
      runs++;
      max = Math.max(max, active);
      await new Promise((resolve) => setImmediate(resolve));
      active--;
      return value;
    },
  };
}

/** Waits until `messages` holds one that `done` accepts; returns them all. */
async function until(
  replies: Awaited<ReturnType<typeof collectReplies>>,
  done: (message: AMQPMessage) => boolean,
): Promise<AMQPMessage[]> {
  for (let seen = 1; ; seen++) {
    const messages = await replies.next(seen);
    if (messages.slice(seen - 1).some(done)) return messages;
  }
}

describe('a crafted batch', () => {
  test('thousands of entries on a prefetch: 2 server: never more than 2 handlers at once', async (t) => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('hostile.batch');
    const counter = concurrency();
    await rpc.serve(queue, (request: number) => counter.run(request), {
      prefetch: 2,
      batch: { maxEntries: 10_000 },
    });
    const channel = await rawChannel(t);
    const replies = await collectReplies(channel);
    const count = 5_000;
    const deadline = Date.now() + 60_000;
    const entries = Array.from({ length: count }, (_, i) => [`e${i}`, deadline, null, null, i]);
    await channel.basicPublish('', queue, JSON.stringify(entries), {
      contentType: BATCH,
      correlationId: 'batch-1',
      replyTo: replies.name,
    });
    let answered = 0;
    for (let seen = 1; answered < count; seen++) {
      const [message] = (await replies.next(seen)).slice(seen - 1);
      assert.equal(message?.properties.contentType, BATCH);
      answered += (JSON.parse(message.bodyToString() ?? '[]') as unknown[]).length;
    }
    assert.equal(counter.runs, count);
    assert.equal(counter.max, 2);
  });

  test('over the server limit: refused as a whole with RESOURCE_EXHAUSTED, nothing runs', async (t) => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('hostile.batch.limit');
    let runs = 0;
    await rpc.serve(queue, () => ++runs, { batch: { maxEntries: 10 } });
    const channel = await rawChannel(t);
    const replies = await collectReplies(channel);
    const entries = Array.from({ length: 11 }, (_, i) => [`e${i}`, null, null, null, i]);
    await channel.basicPublish('', queue, JSON.stringify(entries), {
      contentType: BATCH,
      correlationId: 'too-many',
      replyTo: replies.name,
    });
    const [reply] = await replies.next(1);
    assert.equal(reply?.properties.correlationId, 'too-many');
    assert.equal(reply.properties.headers?.['rpc-status'], 'RESOURCE_EXHAUSTED');
    assert.equal(runs, 0);
  });

  test('batch: false refuses batches (UNIMPLEMENTED for every call); plain calls still work', async () => {
    const rpc = await connectForTest();
    const batching = await connectForTest({ batch: true });
    const queue = uniqueQueue('hostile.batch.off');
    await rpc.serve(queue, (request: number) => request * 2, { batch: false });
    const outcomes = await Promise.allSettled([batching.call(queue, 1), batching.call(queue, 2)]);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(outcome.reason instanceof RpcError);
      assert.equal(outcome.reason.code, 'UNIMPLEMENTED');
    }
    assert.equal(await batching.call(queue, 3), 6); // alone in its tick: a plain request
  });
});

describe('a burst of broadcasts', () => {
  test('on a prefetch: 1 server: one handler at a time; the excess answered RESOURCE_EXHAUSTED', async () => {
    const server = await connectForTest();
    const caller = await connectForTest();
    const queue = uniqueQueue('hostile.bcast');
    const counter = concurrency();
    await server.serve(queue, (request: number) => counter.run(request), { prefetch: 1 });
    const burst = 200;
    const results = await Promise.all(
      Array.from({ length: burst }, (_, i) =>
        caller.broadcast(queue, i, { max: 1, timeoutMs: 20_000 }),
      ),
    );
    assert.equal(counter.max, 1);
    const ok = results.filter(([reply]) => reply?.ok === true).length;
    const refused = results.filter(
      ([reply]) => reply?.ok === false && reply.error.code === 'RESOURCE_EXHAUSTED',
    ).length;
    assert.equal(ok + refused, burst, 'every broadcast is answered, run or refused');
    assert.equal(ok, counter.runs);
    assert.ok(ok >= 1);
  });
});

describe('a burst of describe requests', () => {
  test('a server answers at most DESCRIBE_ANSWERS_PER_SECOND a second and keeps serving', async (t) => {
    const server = await connectForTest();
    const queue = uniqueQueue('hostile.describe');
    await server.serve(queue, (n: number) => n + 1);
    const channel = await rawChannel(t);
    const replies = await channel.queueDeclare('', { exclusive: true, autoDelete: true });
    let answered = 0;
    const firstAnswer = deferred();
    await channel.basicConsume(replies.name, { noAck: true }, () => {
      answered++;
      firstAnswer.resolve();
    });
    const burst = 200;
    const startedAt = performance.now();
    for (let i = 0; i < burst; i++) {
      await channel.basicPublish('rabbit-rpc.control', queue, null, {
        correlationId: `d${i}`,
        replyTo: replies.name,
        headers: { 'rpc-control': 'describe' },
      });
    }
    await firstAnswer.promise;
    const caller = await connectForTest();
    assert.equal(await caller.call(queue, 1), 2);
    // An answer that is not sent cannot be awaited: give late ones a moment to arrive, then
    // allow the bound once for every one-second window the burst may have spanned.
    await delay(300);
    const windows = Math.ceil((performance.now() - startedAt) / 1000) + 1;
    assert.ok(
      answered <= DESCRIBE_ANSWERS_PER_SECOND * windows && answered < burst,
      `${answered} answers to ${burst} describe requests in ${windows} windows of a second`,
    );
  });
});

describe('a broadcast caller', () => {
  test('keeps one reply per instance: a peer bound to the control exchange cannot flood it', async (t) => {
    const caller = await connectForTest();
    const queue = uniqueQueue('hostile.bcast.repeat');
    const channel = await rawChannel(t);
    await channel.exchangeDeclare('rabbit-rpc.control', 'direct', { durable: true });
    const instance = await channel.queueDeclare('', { exclusive: true, autoDelete: true });
    await channel.queueBind(instance.name, 'rabbit-rpc.control', queue);
    await channel.basicConsume(instance.name, { noAck: true }, (request) => {
      for (let i = 0; i < 3; i++) {
        void channel.basicPublish('', request.properties.replyTo ?? '', JSON.stringify(i), {
          correlationId: request.properties.correlationId ?? '',
          headers: { 'rpc-control-queue': instance.name },
        });
      }
    });
    const replies = await caller.broadcast(queue, null, { timeoutMs: 1_000 });
    assert.deepEqual(replies, [{ instance: instance.name, ok: true, reply: 0 }]);
  });
});

describe('call ids', () => {
  test('are random UUIDs (122 random bits), not a prefix and a counter', async (t) => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('hostile.ids');
    const channel = await rawChannel(t);
    await channel.queueDeclare(queue, { durable: true, autoDelete: false });
    const ids: string[] = [];
    const three = deferred();
    await channel.basicConsume(queue, { noAck: true }, (message) => {
      ids.push(message.properties.correlationId ?? '');
      if (ids.length === 3) three.resolve();
    });
    const calls = [1, 2, 3].map((n) => rpc.call(queue, n, { timeoutMs: 500 }).catch(() => null));
    await three.promise;
    await Promise.all(calls);
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const id of ids) assert.match(id, uuid);
    assert.equal(new Set(ids).size, 3);
  });
});

describe('stream credit', () => {
  test('a credit far beyond the window is clamped: the server runs one window ahead, no more', async (t) => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('hostile.credit');
    let pulled = 0;
    await rpc.serve(queue, async function* () {
      for (;;) {
        pulled++;
        yield pulled;
        await Promise.resolve();
      }
    });
    const channel = await rawChannel(t);
    const replies = await collectReplies(channel);
    const id = randomUUID();
    const window = 2;
    await channel.basicPublish('', queue, 'null', {
      correlationId: id,
      replyTo: replies.name,
      headers: { 'rpc-stream-window': window, 'rpc-deadline': Date.now() + 30_000 },
    });
    const first = await replies.next(window);
    const controlQueue = first[0]?.properties.headers?.['rpc-control-queue'];
    assert.equal(typeof controlQueue, 'string');
    // Anyone who knows the id could send this: a credit for a billion items.
    await channel.basicPublish('', controlQueue as string, null, {
      correlationId: id,
      headers: { 'rpc-control': 'credit', 'rpc-credit': 1_000_000_000 },
    });
    // Clamped to the items sent (2, and the one on its way) plus the window.
    const clamped = 2 * window + 1;
    await replies.next(clamped);
    await channel.basicPublish('', controlQueue as string, null, {
      correlationId: id,
      headers: { 'rpc-control': 'cancel' },
    });
    const all = await until(replies, (m) => m.properties.headers?.['rpc-stream'] === 'end');
    const items = all.filter((m) => m.properties.headers?.['rpc-stream'] === 'item');
    assert.equal(items.length, clamped);
    assert.ok(pulled <= clamped + 1, `the generator was pulled ${pulled} times`);
  });
});

/**
 * A plain AMQP "server" on `queue` that answers a stream request with the items `script`
 * returns (seq numbers as given), claiming `controlQueue` as its control queue, which it
 * consumes: `cancels` resolves with the first control message there.
 */
async function scriptedStreamServer(
  t: { after: (fn: () => Promise<void>) => void },
  queue: string,
  seqs: number[],
) {
  const channel = await rawChannel(t);
  await channel.queueDeclare(queue, { durable: true, autoDelete: false });
  const control = await channel.queueDeclare('', { exclusive: true, autoDelete: true });
  const cancel = deferred<AMQPMessage>();
  await channel.basicConsume(control.name, { noAck: true }, (message) => {
    if (message.properties.headers?.['rpc-control'] === 'cancel') cancel.resolve(message);
  });
  await channel.basicConsume(queue, { noAck: true }, (request) => {
    const { replyTo, correlationId } = request.properties;
    for (const seq of seqs) {
      void channel.basicPublish('', replyTo ?? '', JSON.stringify(seq), {
        correlationId: correlationId ?? '',
        headers: { 'rpc-stream': 'item', 'rpc-stream-seq': seq, 'rpc-control-queue': control.name },
      });
    }
  });
  return { cancel: cancel.promise };
}

async function readAll(
  stream: AsyncIterable<unknown>,
): Promise<{ items: unknown[]; code?: string }> {
  const items: unknown[] = [];
  try {
    for await (const item of stream) items.push(item);
  } catch (error) {
    assert.ok(error instanceof RpcError, String(error));
    return { items, code: error.code };
  }
  return { items };
}

describe('the caller checks a stream', () => {
  test('more items than its window (no credit given): RESOURCE_EXHAUSTED, and the server is told to stop', async (t) => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('hostile.overrun');
    const server = await scriptedStreamServer(t, queue, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const stream = rpc.stream(queue, null, { window: 4, timeoutMs: 10_000 });
    const first = await stream.next(); // the rest arrive while this one is read
    assert.equal(first.value, 0);
    const { code } = await readAll(stream);
    assert.equal(code, 'RESOURCE_EXHAUSTED');
    await server.cancel;
  });

  test('an item out of order, or repeated: DATA_LOSS; item 0 again (a restarted request): UNAVAILABLE', async (t) => {
    const rpc = await connectForTest();
    const cases: Array<[number[], string]> = [
      [[0, 2], 'DATA_LOSS'],
      [[1], 'DATA_LOSS'],
      [[0, 1, 1], 'DATA_LOSS'],
      [[0, 0], 'UNAVAILABLE'],
    ];
    for (const [seqs, expected] of cases) {
      const queue = uniqueQueue('hostile.seq');
      await scriptedStreamServer(t, queue, seqs);
      const { code } = await readAll(rpc.stream(queue, null, { window: 8, timeoutMs: 10_000 }));
      assert.equal(code, expected, `seqs ${JSON.stringify(seqs)}`);
    }
  });
});
