import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  RpcError,
  type CallInterceptor,
  type Logger,
  type ServeInterceptor,
} from '../../src/index.js';
import { connectForTest, failOnUnhandled, uniqueQueue } from '../helpers.js';

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
