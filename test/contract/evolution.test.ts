// Contract evolution: an old client against a new server and the reverse, each with its
// own copy of the contract, as two separately deployed programs would have.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { z } from 'zod';
import { RpcError, defineService } from '../../src/index.js';
import { connectForTest, failOnUnhandled, uniqueQueue } from '../helpers.js';

failOnUnhandled();

/** Version 1: `add`. */
function v1(queue: string) {
  return defineService(
    'calc',
    { add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() } },
    { queue },
  );
}

/** Version 2: `add` gains an optional field, and a method `multiply` is added. */
function v2(queue: string) {
  return defineService(
    'calc',
    {
      add: {
        input: z.object({ a: z.number(), b: z.number(), round: z.boolean().optional() }),
        output: z.number(),
      },
      multiply: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    },
    { queue },
  );
}

/** Version 1 with a strict input: unknown fields are refused, not ignored. */
function v1Strict(queue: string) {
  return defineService(
    'calc',
    { add: { input: z.strictObject({ a: z.number(), b: z.number() }), output: z.number() } },
    { queue },
  );
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError);
    assert.equal(error.code, code);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describe('contract evolution', () => {
  test('an old client (v1) works against a new server (v2)', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('calc');
    await rpc.serve(v2(queue), {
      add: ({ a, b, round }) => (round === true ? Math.round(a + b) : a + b),
      multiply: ({ a, b }) => a * b,
    });
    const oldClient = rpc.client(v1(queue), { validateInput: true, validateOutput: true });
    assert.equal(await oldClient.add({ a: 1.25, b: 1 }), 2.25);
  });

  test('a new client (v2) against an old server (v1): new methods get UNIMPLEMENTED', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('calc');
    await rpc.serve(v1(queue), { add: ({ a, b }) => a + b });
    const newClient = rpc.client(v2(queue));
    const error = await rejectsWith(
      newClient.multiply({ a: 2, b: 3 }, { timeoutMs: 10_000 }),
      'UNIMPLEMENTED',
    );
    assert.deepEqual(error.details, { service: 'calc', method: 'multiply' });
    // The old server ignores the optional field it does not know (zod strips it).
    assert.equal(await newClient.add({ a: 1.25, b: 1, round: true }), 2.25);
    assert.equal(await newClient.add({ a: 1, b: 1 }), 2);
  });

  test('an old server with a strict schema refuses the new optional field', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('calc');
    await rpc.serve(v1Strict(queue), { add: ({ a, b }) => a + b });
    const newClient = rpc.client(v2(queue));
    await rejectsWith(newClient.add({ a: 1, b: 1, round: true }), 'INVALID_ARGUMENT');
    // ...unless the new client leaves it out.
    assert.equal(await newClient.add({ a: 1, b: 1 }), 2);
  });
});
