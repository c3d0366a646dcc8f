/**
 * Typed service contracts and interceptors through the in-memory broker: what a user's
 * unit test of a service looks like (see docs/testing.md, "In-memory broker").
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import {
  RpcError,
  defineService,
  isServiceError,
  type CallInterceptor,
  type ServeInterceptor,
  type ServiceImplementation,
} from '../../src/index.js';
import { MemoryBroker } from '../../src/testing/index.js';
import { failOnUnhandled } from '../helpers.js';
import { code, connectMemory, setup } from './memory-helpers.js';

failOnUnhandled();

const users = defineService('users', {
  get: {
    input: z.object({ id: z.string().min(1) }),
    output: z.object({ id: z.string(), name: z.string() }),
    errors: { NOT_FOUND: z.object({ id: z.string() }) },
  },
  rename: {
    input: z.object({ id: z.string(), name: z.string().trim().min(1) }),
    output: z.object({ id: z.string(), name: z.string() }),
  },
});

function usersImplementation(): ServiceImplementation<typeof users> {
  const names = new Map([['1', 'ann']]);
  return {
    get: ({ id }, ctx) => {
      const name = names.get(id);
      if (name === undefined) throw ctx.error('NOT_FOUND', `no user ${id}`, { id });
      return { id, name };
    },
    rename: ({ id, name }) => {
      names.set(id, name);
      return { id, name };
    },
  };
}

describe('service contracts over the memory broker', () => {
  test('typed calls, schema transforms, typed errors', async () => {
    const { broker, rpc } = await setup();
    await rpc.serve(users, usersImplementation());
    assert.deepEqual(broker.queue('rpc.users')?.consumerCount, 1);
    const client = rpc.client(users);
    assert.deepEqual(await client.get({ id: '1' }), { id: '1', name: 'ann' });
    assert.deepEqual(await client.rename({ id: '2', name: '  bob ' }), { id: '2', name: 'bob' });
    const error = await client.get({ id: '9' }).catch((caught: unknown) => caught);
    assert.ok(error instanceof RpcError);
    assert.equal(error.code, 'NOT_FOUND');
    assert.deepEqual(error.details, { id: '9' });
    assert.ok(isServiceError(error, users, 'get', 'NOT_FOUND'));
  });

  test('invalid input is INVALID_ARGUMENT with the issues, and the handler does not run', async () => {
    const { rpc } = await setup();
    let ran = 0;
    await rpc.serve(users, {
      ...usersImplementation(),
      rename: (input) => {
        ran++;
        return input;
      },
    });
    const client = rpc.client(users);
    const error: unknown = await client.rename({ id: '1', name: '   ' }).catch((e: unknown) => e);
    assert.ok(error instanceof RpcError);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    const details = error.details as { issues: Array<{ path: unknown[] }> };
    assert.deepEqual(
      details.issues.map((issue) => issue.path),
      [['name']],
    );
    assert.equal(ran, 0);
  });

  test('a method the server does not know is UNIMPLEMENTED; a plain call too', async () => {
    const { rpc } = await setup();
    await rpc.serve(users, usersImplementation());
    await assert.rejects(rpc.call('rpc.users', { id: '1' }), code('UNIMPLEMENTED'));
    await assert.rejects(rpc.callMethod('rpc.users', 'delete', { id: '1' }), code('UNIMPLEMENTED'));
  });

  test('a client on another connection, and a server that is not there', async () => {
    const broker = new MemoryBroker();
    const client = (await connectMemory(broker)).client(users);
    await assert.rejects(client.get({ id: '1' }), code('UNAVAILABLE'));
    const server = await connectMemory(broker);
    await server.serve(users, usersImplementation());
    assert.equal((await client.get({ id: '1' })).name, 'ann');
  });
});

describe('interceptors over the memory broker', () => {
  test('call and serve interceptors run in order, add headers and see outcomes', async () => {
    const order: string[] = [];
    const auth: CallInterceptor = (next) => (request) => {
      order.push(`call ${request.method ?? '-'}`);
      request.headers['authorization'] = 'Bearer t';
      return next(request);
    };
    const guard: ServeInterceptor = (next) => async (request, ctx) => {
      order.push(`serve ${ctx.method ?? '-'}`);
      if (ctx.headers['authorization'] !== 'Bearer t') {
        throw new RpcError('UNAUTHENTICATED', 'no token');
      }
      try {
        return await next(request, ctx);
      } finally {
        order.push('served');
      }
    };
    const broker = new MemoryBroker();
    const server = await connectMemory(broker, { serveInterceptors: [guard] });
    await server.serve(users, usersImplementation());
    const withToken = await connectMemory(broker, { callInterceptors: [auth] });
    const without = await connectMemory(broker);
    assert.equal((await withToken.client(users).get({ id: '1' })).name, 'ann');
    assert.deepEqual(order, ['call get', 'serve get', 'served']);
    await assert.rejects(without.client(users).get({ id: '1' }), code('UNAUTHENTICATED'));
  });

  test("an interceptor's own failure reaches the caller with a code", async () => {
    const broken: CallInterceptor = () => () => {
      throw new Error('interceptor bug');
    };
    const { rpc } = await setup({ callInterceptors: [broken] });
    await assert.rejects(rpc.call('any', null), code('UNKNOWN'));
  });
});
