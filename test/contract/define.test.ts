// defineService and validation without a broker.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { RpcError, defineService, method, typeOnly, type Shape } from '../../src/index.js';
import { validate } from '../../src/contract/validate.js';

function invalidArgument(error: unknown): boolean {
  return error instanceof RpcError && error.code === 'INVALID_ARGUMENT';
}

describe('defineService', () => {
  test('carries its name, methods and queue, and is frozen', () => {
    const add = { input: z.number(), output: z.number() };
    const svc = defineService('calc', { add, ping: method<undefined, string>() });
    assert.equal(svc.name, 'calc');
    assert.equal(svc.queue, 'rpc.calc');
    assert.equal(svc.methods.add, add);
    assert.ok(Object.isFrozen(svc) && Object.isFrozen(svc.methods));
    assert.equal(defineService('calc', {}, { queue: 'other' }).queue, 'other');
  });

  test('refuses bad names, queues, method names, shapes and error codes', () => {
    const ok = method<undefined, undefined>();
    const bad: (() => unknown)[] = [
      () => defineService('', {}),
      () => defineService('x', {}, { queue: 'q'.repeat(256) }),
      () => defineService('x', { then: ok }),
      () => defineService('x', { m: null as never }),
      () => defineService('x', { m: { input: typeOnly(), output: 3 as never } }),
      () => defineService('x', { m: { input: { parse: () => 1 } as never, output: typeOnly() } }),
      () =>
        defineService('x', {
          m: { ...ok, errors: { TEAPOT: typeOnly() } as never },
        }),
    ];
    for (const make of bad) assert.throws(make, invalidArgument);
  });
});

describe('validate', () => {
  test('a types-only shape passes anything through', () => {
    assert.deepEqual(validate(typeOnly<number>(), 'x'), { ok: true, value: 'x' });
  });

  test('sync schemas answer synchronously, with JSON-safe issue paths', () => {
    const schema = z.object({ list: z.array(z.object({ n: z.number() })) });
    assert.deepEqual(validate(schema, { list: [{ n: 1 }] }), {
      ok: true,
      value: { list: [{ n: 1 }] },
    });
    const failed = validate(schema, { list: [{ n: 'x' }] });
    assert.ok(!(failed instanceof Promise) && !failed.ok);
    assert.deepEqual(failed.issues[0]?.path, ['list', 0, 'n']);
  });

  test('async schemas answer with a promise; path segments and symbols are flattened', async () => {
    const key = Symbol('k');
    const schema: Shape = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () =>
          Promise.resolve({ issues: [{ message: 'no', path: [{ key: 'a' }, 1, key] }] }),
      },
    };
    const outcome = validate(schema, 1);
    assert.ok(outcome instanceof Promise);
    assert.deepEqual(await outcome, {
      ok: false,
      issues: [{ message: 'no', path: ['a', 1, 'Symbol(k)'] }],
    });
  });
});
