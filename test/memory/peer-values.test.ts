/**
 * Values a peer chose never become text by `String()`, which throws on an object whose
 * `toString` and `valueOf` are not functions and overflows on a deep array: found by
 * test/fuzz/memory.test.ts (issue 13), pinned here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RpcError } from '../../src/index.js';
import { textOf } from '../../src/errors.js';
import { failOnUnhandled } from '../helpers.js';
import { setup } from './memory-helpers.js';

failOnUnhandled();

const UNCONVERTIBLE = { valueOf: 1, toString: 1 };
const DEEP = JSON.parse('['.repeat(20_000) + ']'.repeat(20_000)) as unknown;

describe("a peer's values as text", () => {
  test('RpcError.from and textOf never throw', () => {
    for (const value of [UNCONVERTIBLE, DEEP, Object.create(null) as unknown]) {
      assert.equal(typeof textOf(value), 'string');
      assert.equal(RpcError.from(value).code, 'UNKNOWN');
    }
  });

  test('a plain reply {"toString": 1} to a batch fails its calls with INTERNAL', async () => {
    const { broker, rpc } = await setup({ batch: true });
    const client = await broker.connectClient();
    const channel = await client.channel();
    await channel.queueDeclare('batch-liar', {});
    await channel.basicConsume('batch-liar', { noAck: true }, (request) => {
      const { replyTo, correlationId } = request.properties;
      if (replyTo === undefined || correlationId === undefined) return;
      broker.publish(replyTo, '{"toString": 1, "valueOf": 1}', { correlationId });
    });
    const calls = [rpc.call('batch-liar', 1), rpc.call('batch-liar', 2)];
    for (const call of calls) {
      await assert.rejects(
        call,
        (error: unknown) => error instanceof RpcError && error.code === 'INTERNAL',
      );
    }
    await client.close();
  });
});
