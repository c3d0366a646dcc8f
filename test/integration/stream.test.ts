/* eslint-disable @typescript-eslint/require-await -- async generators without await are the handler shape under test */
// Streamed replies (issue 7, part 3) on the real broker: items in order, then the end or an
// error; credit flow control; leaving the loop cancels the stream on the server.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connect, RpcError } from '../../src/index.js';
import { AMQP_URL, connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

/** Collects a stream; the error it ends with (if any) comes back as its code. */
async function drain<T>(stream: AsyncIterable<T>): Promise<{ items: T[]; code?: string }> {
  const items: T[] = [];
  try {
    for await (const item of stream) items.push(item);
  } catch (error) {
    assert.ok(error instanceof RpcError, String(error));
    return { items, code: error.code };
  }
  return { items };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('stream()', () => {
  test('an async generator handler: every item in order, then the end', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.gen');
    await rpc.serve(queue, async function* (request) {
      for (let i = 0; i < (request as number); i++) yield { i };
    });
    const { items, code } = await drain(rpc.stream<{ i: number }>(queue, 1_000, { window: 16 }));
    assert.equal(code, undefined);
    assert.deepEqual(
      items.map((item) => item.i),
      range(1_000),
    );
    assert.equal(rpc.stats().pending, 0);
  });

  test('a handler that returns an AsyncIterable streams too; an empty one just ends', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.iterable');
    await rpc.serve(queue, (request) => ({
      async *[Symbol.asyncIterator]() {
        yield* range(request as number);
      },
    }));
    assert.deepEqual((await drain(rpc.stream(queue, 3))).items, [0, 1, 2]);
    assert.deepEqual(await drain(rpc.stream(queue, 0)), { items: [] });
  });

  test('the server never runs more than a window ahead of a slow reader', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.window');
    const window = 4;
    let produced = 0;
    let consumed = 0;
    let maxAhead = 0;
    await rpc.serve(queue, async function* () {
      for (let i = 0; i < 60; i++) {
        produced++;
        maxAhead = Math.max(maxAhead, produced - consumed);
        yield i;
      }
    });
    const stream = rpc.stream<number>(queue, null, { window });
    for await (const item of stream) {
      assert.equal(item, consumed);
      consumed++;
      // A slow reader: a macrotask per item lets the server run ahead if it could.
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(consumed, 60);
    assert.ok(maxAhead <= window, `the server ran ${maxAhead} items ahead`);
    // ...and it did use the window, rather than waiting for each item.
    assert.ok(maxAhead > 1, `maxAhead ${maxAhead}`);
  });

  test('an error in the middle: the items before it, then the error with its code', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.error');
    await rpc.serve(queue, async function* () {
      yield 'a';
      yield 'b';
      throw new RpcError('NOT_FOUND', 'no more');
    });
    assert.deepEqual(await drain(rpc.stream(queue, null)), {
      items: ['a', 'b'],
      code: 'NOT_FOUND',
    });
  });

  test('leaving the loop early cancels the stream on the server (its finally runs)', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.break');
    const finished = deferred<{ sent: number; aborted: boolean }>();
    await rpc.serve(queue, async function* (_request, ctx) {
      let sent = 0;
      try {
        for (;;) {
          yield sent;
          sent++;
        }
      } finally {
        finished.resolve({ sent, aborted: ctx.signal.aborted });
      }
    });
    const taken: number[] = [];
    for await (const item of rpc.stream<number>(queue, null, { window: 8 })) {
      taken.push(item);
      if (taken.length === 5) break;
    }
    assert.deepEqual(taken, range(5));
    const { sent, aborted } = await finished.promise;
    assert.ok(aborted, "the handler's ctx.signal aborted");
    assert.ok(sent < 5 + 2 * 8, `the generator went on to ${sent}`);
    assert.equal(rpc.stats().pending, 0);
  });

  test('stopping a stream and closing the connection at once still cancels it on the server', async () => {
    const server = await connectForTest();
    const caller = await connect(AMQP_URL);
    const queue = uniqueQueue('stream.close');
    const finished = deferred<boolean>();
    await server.serve(queue, async function* (_request, ctx) {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        finished.resolve(ctx.signal.aborted);
      }
    });
    const stream = caller.stream<number>(queue, null, { window: 32, timeoutMs: 60_000 });
    assert.deepEqual(await stream.next(), { value: 0, done: false });
    // The cancel goes out on a channel opened for it: close() must not drop it on the way.
    await Promise.all([stream.return(), caller.close()]);
    // Without the cancel the generator would run on until its 60 s deadline.
    assert.equal(await finished.promise, true);
  });

  test('the whole stream must end within timeoutMs: DEADLINE_EXCEEDED after the items so far', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.deadline');
    await rpc.serve(queue, async function* (_request, ctx) {
      yield 'first';
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    });
    const { items, code } = await drain(rpc.stream(queue, null, { timeoutMs: 300 }));
    assert.deepEqual(items, ['first']);
    assert.equal(code, 'DEADLINE_EXCEEDED');
  });

  test('an aborted signal ends the stream with CANCELLED', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.abort');
    await rpc.serve(queue, async function* (_request, ctx) {
      yield 1;
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    });
    const abort = new AbortController();
    const stream = rpc.stream(queue, null, { signal: abort.signal });
    assert.deepEqual(await stream.next(), { value: 1, done: false });
    abort.abort();
    await assert.rejects(stream.next(), (error: RpcError) => error.code === 'CANCELLED');
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  test('a server that replies once gives a stream of one item', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.unary');
    await rpc.serve(queue, (request) => `Processed: ${String(request)}`);
    assert.deepEqual(await drain(rpc.stream(queue, 'x')), { items: ['Processed: x'] });
  });

  test('call() on a streaming handler is FAILED_PRECONDITION, and the generator never runs', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.unary-caller');
    let ran = false;
    await rpc.serve(queue, async function* () {
      ran = true;
      yield 1;
    });
    await assert.rejects(
      rpc.call(queue, null),
      (error: RpcError) => error.code === 'FAILED_PRECONDITION',
    );
    assert.equal(ran, false);
  });

  test('nothing is sent until the stream is read; no queue: UNAVAILABLE; bad window: INVALID_ARGUMENT', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('stream.lazy');
    let requests = 0;
    await rpc.serve(queue, () => ++requests);
    const unread = rpc.stream(queue, null);
    assert.equal((await drain(rpc.stream(queue, null))).items.length, 1);
    assert.equal(requests, 1);
    await unread.return();
    assert.equal(rpc.stats().calls, 1);
    assert.equal((await drain(rpc.stream(uniqueQueue('stream.none'), null))).code, 'UNAVAILABLE');
    assert.equal((await drain(rpc.stream(queue, null, { window: 0 }))).code, 'INVALID_ARGUMENT');
  });

  test('a streamed item over maxPayloadBytes ends the stream with RESOURCE_EXHAUSTED', async () => {
    const rpc = await connectForTest({ maxPayloadBytes: 1_000 });
    const queue = uniqueQueue('stream.big');
    await rpc.serve(queue, async function* () {
      yield 'small';
      yield 'x'.repeat(2_000);
    });
    assert.deepEqual(await drain(rpc.stream(queue, null)), {
      items: ['small'],
      code: 'RESOURCE_EXHAUSTED',
    });
  });
});
