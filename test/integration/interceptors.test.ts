/* eslint-disable @typescript-eslint/require-await -- async generators without await are the stream handler shape */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  defineService,
  method,
  RpcError,
  type CallInterceptor,
  type CallRequest,
  type Logger,
  type ServeInterceptor,
} from '../../src/index.js';
import { connectForTest, failOnUnhandled, uniqueQueue, uniqueServiceName } from '../helpers.js';

failOnUnhandled();

describe('interceptors', () => {
  test('call interceptors run outermost first and may add headers', async () => {
    const order: string[] = [];
    const tracer =
      (name: string): CallInterceptor =>
      (next) =>
      async (request) => {
        order.push(`${name} before`);
        request.headers[`x-${name}`] = name;
        const reply = await next(request);
        order.push(`${name} after`);
        return reply;
      };
    const rpc = await connectForTest({ callInterceptors: [tracer('a'), tracer('b')] });
    const queue = uniqueQueue('intercept');
    await rpc.serve(queue, (_request, ctx) => [ctx.headers['x-a'], ctx.headers['x-b']]);
    assert.deepEqual(await rpc.call(queue, null, { headers: { keep: 1 } }), ['a', 'b']);
    assert.deepEqual(order, ['a before', 'b before', 'b after', 'a after']);
  });

  test('a call interceptor sees the request and the outcome, and its errors get a code', async () => {
    const seen: Array<{ queue: string; timeoutMs: number; code?: string }> = [];
    const observe: CallInterceptor = (next) => async (request) => {
      try {
        return await next(request);
      } catch (error) {
        seen.push({
          queue: request.queue,
          timeoutMs: request.timeoutMs,
          code: (error as RpcError).code,
        });
        throw error;
      }
    };
    const broken: CallInterceptor = () => () => {
      throw new Error('interceptor bug');
    };
    const rpc = await connectForTest({ callInterceptors: [observe] });
    const missing = uniqueQueue('intercept-missing');
    await assert.rejects(rpc.call(missing, null, { timeoutMs: 5_000 }), { code: 'UNAVAILABLE' });
    assert.deepEqual(seen, [{ queue: missing, timeoutMs: 5_000, code: 'UNAVAILABLE' }]);

    const buggy = await connectForTest({ callInterceptors: [broken] });
    await assert.rejects(buggy.call(missing, null), {
      code: 'UNKNOWN',
      message: 'interceptor bug',
    });
  });

  test('calls, typed methods, streams and broadcasts all run through the call interceptors, with their kind', async () => {
    const seen: Array<{ kind: string; method: string | undefined; outcome: unknown }> = [];
    const auth: CallInterceptor = (next) => async (request) => {
      request.headers['authorization'] = `Bearer for ${request.kind}`;
      const outcome = await next(request);
      seen.push({ kind: request.kind, method: request.method, outcome });
      return outcome;
    };
    const rpc = await connectForTest({ callInterceptors: [auth] });
    const queue = uniqueQueue('intercept-kinds');
    await rpc.serve(queue, async function* (_request: unknown, ctx) {
      yield ctx.headers['authorization'];
      yield 'second';
    });
    const items: unknown[] = [];
    for await (const item of rpc.stream(queue, null)) items.push(item);
    assert.deepEqual(items, ['Bearer for stream', 'second']);
    assert.deepEqual(seen, [{ kind: 'stream', method: undefined, outcome: undefined }]);

    const plain = uniqueQueue('intercept-kinds-plain');
    await rpc.serve(plain, (_request, ctx) => ctx.headers['authorization']);
    seen.length = 0;
    assert.equal(await rpc.call(plain, null), 'Bearer for unary');
    const replies = await rpc.broadcast(plain, null, { max: 1, timeoutMs: 5_000 });
    assert.equal(replies.length, 1);
    const [status] = replies;
    assert.equal(status?.ok && status.reply, 'Bearer for broadcast');
    assert.deepEqual(seen, [
      { kind: 'unary', method: undefined, outcome: 'Bearer for unary' },
      { kind: 'broadcast', method: undefined, outcome: replies },
    ]);

    const shop = defineService(uniqueServiceName('intercept-kinds-shop'), {
      price: method<string, string>(),
      prices: method.stream<string, string>(),
    });
    await rpc.serve(shop, {
      price: (_input, ctx) => String(ctx.headers['authorization']),
      prices: async function* (_input, ctx) {
        yield String(ctx.headers['authorization']);
      },
    });
    const client = rpc.client(shop);
    seen.length = 0;
    assert.equal(await client.price('x'), 'Bearer for unary');
    const typedItems: string[] = [];
    for await (const item of client.prices('x')) typedItems.push(item);
    assert.deepEqual(typedItems, ['Bearer for stream']);
    assert.deepEqual(
      seen.map(({ kind, method: name }) => `${kind} ${String(name)}`),
      ['unary price', 'stream prices'],
    );
  });

  test('an interceptor that passes on a new request without the stream it came with fails the stream with INTERNAL', async () => {
    const rebuild: CallInterceptor = (next) => (request) => {
      const copy: CallRequest = {
        kind: request.kind,
        queue: request.queue,
        method: request.method,
        payload: request.payload,
        headers: request.headers,
        timeoutMs: request.timeoutMs,
        signal: request.signal,
        idempotent: request.idempotent,
      };
      return next(copy);
    };
    const spread: CallInterceptor = (next) => (request) =>
      next({ ...request, headers: { ...request.headers, 'x-spread': 'yes' } });
    const queue = uniqueQueue('intercept-rebuild');
    const plain = uniqueQueue('intercept-rebuild-plain');
    const server = await connectForTest();
    await server.serve(queue, async function* (_request: unknown, ctx) {
      yield ctx.headers['x-spread'] ?? 'none';
    });
    await server.serve(plain, () => 'plain');
    const rebuilt = await connectForTest({ callInterceptors: [rebuild] });
    // A unary call needs nothing more than the request says.
    assert.equal(await rebuilt.call(plain, null), 'plain');
    const failing = rebuilt.stream(queue, null)[Symbol.asyncIterator]();
    await assert.rejects(failing.next(), { code: 'INTERNAL' });
    const copied = await connectForTest({ callInterceptors: [spread] });
    const items: unknown[] = [];
    for await (const item of copied.stream(queue, null)) items.push(item);
    assert.deepEqual(items, ['yes']);
  });

  test("serve interceptors: the connection's outside the server's; they can refuse a request", async () => {
    const order: string[] = [];
    const outer: ServeInterceptor = (next) => async (request, ctx) => {
      order.push('connection');
      return next(request, ctx);
    };
    const auth: ServeInterceptor = (next) => (request, ctx) => {
      order.push('server');
      if (ctx.headers['authorization'] !== 'Bearer good') {
        throw new RpcError('UNAUTHENTICATED', 'bad token');
      }
      return next(request, ctx);
    };
    const rpc = await connectForTest({ serveInterceptors: [outer] });
    const queue = uniqueQueue('serve-intercept');
    let handled = 0;
    await rpc.serve(queue, () => ++handled, { interceptors: [auth] });
    await assert.rejects(rpc.call(queue, null, { headers: { authorization: 'Bearer bad' } }), {
      code: 'UNAUTHENTICATED',
    });
    assert.equal(handled, 0);
    assert.equal(await rpc.call(queue, null, { headers: { authorization: 'Bearer good' } }), 1);
    assert.deepEqual(order, ['connection', 'server', 'connection', 'server']);
  });

  test('a handler that throws synchronously still reaches the interceptors as a rejection', async () => {
    const codes: string[] = [];
    const record: ServeInterceptor = (next) => async (request, ctx) => {
      try {
        return await next(request, ctx);
      } catch (error) {
        codes.push((error as RpcError).code);
        throw error;
      }
    };
    const rpc = await connectForTest();
    const queue = uniqueQueue('serve-sync-throw');
    await rpc.serve(
      queue,
      () => {
        throw new RpcError('NOT_FOUND', 'gone');
      },
      { interceptors: [record] },
    );
    await assert.rejects(rpc.call(queue, null), { code: 'NOT_FOUND' });
    assert.deepEqual(codes, ['NOT_FOUND']);
  });

  test('bad interceptor options are INVALID_ARGUMENT', async () => {
    // @ts-expect-error run-time check for JavaScript callers
    await assert.rejects(connectForTest({ callInterceptors: ['nope'] }), {
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('logger', () => {
  test('unexpected handler failures are logged without the payload; a throwing logger is harmless', async () => {
    const entries: Array<{ level: string; context: Record<string, unknown>; message: string }> = [];
    const record =
      (level: string) =>
      (context: Readonly<Record<string, unknown>>, message: string): void => {
        entries.push({ level, context: { ...context }, message });
        throw new Error('logger bug');
      };
    const logger: Logger = {
      debug: record('debug'),
      info: record('info'),
      warn: record('warn'),
      error: record('error'),
    };
    const rpc = await connectForTest({ logger });
    const queue = uniqueQueue('logged');
    await rpc.serve(queue, (request) => {
      if (request === 'expected') throw new RpcError('NOT_FOUND', 'fine');
      throw new Error('unexpected');
    });
    await assert.rejects(rpc.call(queue, 'secret-payload'), { code: 'UNKNOWN' });
    await assert.rejects(rpc.call(queue, 'expected'), { code: 'NOT_FOUND' });
    const warnings = entries.filter((entry) => entry.level === 'warn');
    assert.equal(warnings.length, 1, 'only the unexpected failure is a warning');
    assert.equal(warnings[0]?.context['code'], 'UNKNOWN');
    assert.ok(!JSON.stringify(entries).includes('secret-payload'));
  });
});
