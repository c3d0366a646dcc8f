// The `method` option of call() and stream(): the method name in the AMQP `type` property
// from a plain call, for servers that dispatch on it (the CLI and `rabbit-rpc ui` use it).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  defineService,
  method,
  type CallInterceptor,
  type HandlerContext,
} from '../../src/index.js';
import { codeOf, connectForTest, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

const math = defineService('math', {
  add: method<{ a: number; b: number }, number>(),
  count: method.stream<{ to: number }, number>(),
});

describe('the method option of call() and stream()', () => {
  test("a plain call with method reaches a contract server's method; stream() too", async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('method-option.contract');
    await rpc.serve(
      math,
      {
        add: ({ a, b }) => a + b,
        count: async function* ({ to }) {
          for (let n = 1; n <= to; n++) yield await Promise.resolve(n);
        },
      },
      { queue },
    );
    assert.equal(await rpc.call(queue, { a: 2, b: 3 }, { method: 'add', timeoutMs: 5_000 }), 5);
    const items: unknown[] = [];
    for await (const item of rpc.stream(queue, { to: 3 }, { method: 'count' })) items.push(item);
    assert.deepEqual(items, [1, 2, 3]);
    // Without it, the contract server does not know which method is meant.
    assert.equal(await codeOf(rpc.call(queue, { a: 2, b: 3 })), 'UNIMPLEMENTED');
    assert.equal(await codeOf(rpc.call(queue, {}, { method: 'nope' })), 'UNIMPLEMENTED');
  });

  test('a plain handler sees ctx.method, the interceptors CallRequest.method', async () => {
    const seen: Array<string | undefined> = [];
    const observe: CallInterceptor = (next) => (request) => {
      seen.push(`${request.kind}:${request.method ?? '-'}`);
      return next(request);
    };
    const rpc = await connectForTest({ callInterceptors: [observe] });
    const queue = uniqueQueue('method-option.plain');
    await rpc.serve(queue, (_request, ctx: HandlerContext) => ctx.method ?? null);
    assert.equal(await rpc.call(queue, null, { method: 'users.find' }), 'users.find');
    assert.equal(await rpc.call(queue, null), null);
    const items: unknown[] = [];
    for await (const item of rpc.stream(queue, null, { method: 'tail' })) items.push(item);
    assert.deepEqual(items, ['tail']);
    assert.deepEqual(seen, ['unary:users.find', 'unary:-', 'stream:tail']);
  });

  test('a method that is no AMQP short string is refused before anything is sent', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('method-option.bad');
    assert.equal(await codeOf(rpc.call(queue, null, { method: '' })), 'INVALID_ARGUMENT');
    assert.equal(
      await codeOf(rpc.call(queue, null, { method: 'x'.repeat(256) })),
      'INVALID_ARGUMENT',
    );
    const stream = rpc.stream(queue, null, { method: 7 as unknown as string });
    assert.equal(await codeOf(stream.next()), 'INVALID_ARGUMENT');
  });
});
