/**
 * Deadlines further ahead than one Node timer can wait (2^31 - 1 ms, about 24.8 days):
 * the handler must run with its signal quiet, not be aborted at once (issue 13, defect 7).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BATCH_CONTENT_TYPE, readReplyBatch } from '../../src/protocol/batch.js';
import { decodeReplyOutcome } from '../../src/protocol/error-reply.js';
import type { AmqpMessageLike } from '../../src/transport/types.js';
import { deferred, failOnUnhandled } from '../helpers.js';
import { setup } from './memory-helpers.js';

failOnUnhandled();

const THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000;

/**
 * A handler that reads `ctx.signal` (which arms the deadline timer), waits a few ms (past
 * the 1 ms an overflowing timer fires after), then says whether the signal aborted.
 */
async function abortedAfterAWhile(
  _request: unknown,
  ctx: { signal: AbortSignal },
): Promise<boolean> {
  const signal = ctx.signal;
  await new Promise((resolve) => setTimeout(resolve, 5));
  return signal.aborted;
}

describe('a deadline 30 days ahead', () => {
  test('a request: the handler is not aborted', async () => {
    const { broker, rpc } = await setup();
    await rpc.serve('far', abortedAfterAWhile);
    const client = await broker.connectClient();
    const channel = await client.channel();
    const { name } = await channel.queueDeclare('', { exclusive: true });
    const reply = deferred<AmqpMessageLike>();
    await channel.basicConsume(name, { noAck: true }, (message) => reply.resolve(message));
    broker.publish('far', '"x"', {
      replyTo: name,
      correlationId: 'far-1',
      headers: { 'rpc-deadline': Date.now() + THIRTY_DAYS_MS },
    });
    assert.equal(decodeReplyOutcome(await reply.promise), false);
    await client.close();
  });

  test('batch entries: none is aborted', async () => {
    const { broker, rpc } = await setup();
    await rpc.serve('far-batch', abortedAfterAWhile);
    const client = await broker.connectClient();
    const channel = await client.channel();
    const { name } = await channel.queueDeclare('', { exclusive: true });
    const outcomes: Array<[string, unknown]> = [];
    const both = deferred();
    await channel.basicConsume(name, { noAck: true }, (message) => {
      outcomes.push(...readReplyBatch(message.body));
      if (outcomes.length === 2) both.resolve();
    });
    const far = Date.now() + THIRTY_DAYS_MS;
    broker.publish(
      'far-batch',
      JSON.stringify([
        ['a', far, null, null, 1],
        ['b', far, null, null, 2],
      ]),
      {
        contentType: BATCH_CONTENT_TYPE,
        replyTo: name,
        correlationId: 'far-batch-1',
        headers: { 'rpc-deadline': far },
      },
    );
    await both.promise;
    assert.deepEqual(outcomes.sort(), [
      ['a', false],
      ['b', false],
    ]);
    await client.close();
  });
});
