/** Streaming methods of service contracts through the in-memory broker (rabbit-rpc/testing). */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, test } from 'node:test';
import { z } from 'zod';
import type { RpcError } from '../../src/index.js';
import { defineService, method, type ServiceImplementation } from '../../src/index.js';
import { failOnUnhandled } from '../helpers.js';
import { code, setup } from './memory-helpers.js';

failOnUnhandled();

const feed = defineService('feed', {
  count: { input: z.object({ to: z.number() }), output: z.number(), stream: true },
  forever: method.stream<undefined, number>(),
});

function feedImplementation(ended: EventEmitter): ServiceImplementation<typeof feed> {
  return {
    count: async function* ({ to }) {
      for (let n = 0; n < to; n++) yield await Promise.resolve(n === 3 ? ('x' as never) : n);
    },
    forever: async function* (_input, ctx) {
      try {
        for (let n = 0; ; n++) yield await Promise.resolve(n);
      } finally {
        ended.emit('forever', ctx.signal);
      }
    },
  };
}

describe('streaming methods over the memory broker', () => {
  test('items in order, item validation, input validation', async () => {
    const { rpc } = await setup();
    await rpc.serve(feed, feedImplementation(new EventEmitter()), { validateOutput: true });
    const client = rpc.client(feed);
    const items: number[] = [];
    for await (const n of client.count({ to: 3 }, { window: 1 })) items.push(n);
    assert.deepEqual(items, [0, 1, 2]);
    // The fourth item is not a number: INTERNAL after the three good ones.
    const seen: number[] = [];
    await assert.rejects(async () => {
      for await (const n of client.count({ to: 10 })) seen.push(n);
    }, code('INTERNAL'));
    assert.deepEqual(seen, [0, 1, 2]);
    await assert.rejects(
      client.count({ to: '1' } as unknown as { to: number }).next(),
      code('INVALID_ARGUMENT'),
    );
  });

  test('breaking out of the loop cancels the generator on the server', async () => {
    const { rpc } = await setup();
    const ended = new EventEmitter();
    await rpc.serve(feed, feedImplementation(ended));
    const foreverEnded = once(ended, 'forever');
    for await (const n of rpc.client(feed).forever(undefined, { window: 2 })) {
      if (n === 4) break;
    }
    const [signal] = (await foreverEnded) as [AbortSignal];
    assert.equal((signal.reason as RpcError).code, 'CANCELLED');
  });

  test('a streaming method the server does not have is UNIMPLEMENTED', async () => {
    const { rpc } = await setup();
    await rpc.serve(feed, feedImplementation(new EventEmitter()));
    const newer = defineService('feed', {
      ...feed.methods,
      tail: method.stream<undefined, string>(),
    });
    await assert.rejects(rpc.client(newer).tail().next(), code('UNIMPLEMENTED'));
  });
});
