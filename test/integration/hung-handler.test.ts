/**
 * A handler that never returns. Its `ctx.signal` aborts at the caller's deadline, but a
 * handler that ignores it used to hold its delivery, and its prefetch slot, until the
 * broker's consumer timeout (30 min on RabbitMQ 3.x and 4.0); RabbitMQ 4.3 no longer applies
 * that timeout to classic queues, so such handlers would stop a server for good. The server
 * now gives the request up 2 s after its deadline (docs/decisions.md, D30).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectForTest, deferred, failOnUnhandled, uniqueQueue, assertCode } from '../helpers.js';

failOnUnhandled();

test('a handler that ignores its deadline loses its prefetch slot 2 s after it, not for good', async () => {
  const warnings: string[] = [];
  const rpc = await connectForTest({
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (_context, message) => warnings.push(message),
      error: () => undefined,
    },
  });
  const queue = uniqueQueue('hung');
  const hung = deferred();
  const hungAborted = deferred<string>();
  let runs = 0;
  await rpc.serve(
    queue,
    async (request: string, ctx) => {
      runs++;
      if (request !== 'hang') return `${request} done`;
      ctx.signal.addEventListener('abort', () =>
        hungAborted.resolve(String((ctx.signal.reason as { code?: string }).code)),
      );
      await hung.promise; // ignores ctx.signal
      return 'too late';
    },
    { prefetch: 1 },
  );

  const started = Date.now();
  const first = rpc.call(queue, 'hang', { timeoutMs: 300 });
  const second = rpc.call(queue, 'second', { timeoutMs: 10_000 });
  assertCode(await first.catch((error: unknown) => error), 'DEADLINE_EXCEEDED');
  assert.equal(await hungAborted.promise, 'DEADLINE_EXCEEDED');
  // The only prefetch slot is the hung handler's until the server gives its request up.
  assert.equal(await second, 'second done');
  const waitedMs = Date.now() - started;
  assert.ok(waitedMs >= 2_300 - 50, `answered after ${waitedMs} ms`);
  assert.ok(waitedMs < 300 + 2_000 + 1_000 + 1_500, `answered after ${waitedMs} ms`);
  assert.equal(rpc.stats().servers[0]?.abandoned, 1);
  assert.ok(
    warnings.some((warning) => warning.includes('after its deadline')),
    warnings.join('\n'),
  );

  // The hung handler finishing late sends nothing and acks nothing twice: the channel lives.
  hung.resolve();
  assert.equal(await rpc.call(queue, 'third'), 'third done');
  assert.equal(runs, 3);
  assert.equal(rpc.stats().servers[0]?.recoveries, 0);
  assert.equal(rpc.stats().unmatchedReplies, 0);
});
