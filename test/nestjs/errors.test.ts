// What a Nest handler throws reaches a rabbit-rpc caller as an RpcError with a code, through
// Nest's guards, pipes, interceptors and exception filters.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { connectForTest, uniqueQueue } from '../helpers.js';
import { byName, rejectsWith, startMathService } from './helpers.js';

describe('errors of a Nest handler, as rabbit-rpc codes', async () => {
  const queue = uniqueQueue('nest.errors');
  await startMathService(queue);
  const call = byName(await connectForTest(), queue);

  test('RpcException({ code, message, details }) keeps its code, message and details', async () => {
    const error = await rejectsWith(call('fail.rpc'), 'NOT_FOUND');
    assert.equal(error.message, 'no such user');
    assert.deepEqual(error.details, { id: 7 });
  });

  test("rabbit-rpc's own RpcError thrown in a handler keeps its code", async () => {
    const error = await rejectsWith(call('fail.rpcerror'), 'ALREADY_EXISTS');
    assert.deepEqual(error.details, { id: 7 });
  });

  const statuses = [
    [400, 'INVALID_ARGUMENT'],
    [401, 'UNAUTHENTICATED'],
    [403, 'PERMISSION_DENIED'],
    [404, 'NOT_FOUND'],
    [409, 'ALREADY_EXISTS'],
    [429, 'RESOURCE_EXHAUSTED'],
    [503, 'UNAVAILABLE'],
    [504, 'DEADLINE_EXCEEDED'],
    [418, 'UNKNOWN'],
    [500, 'UNKNOWN'],
  ] as const;
  for (const [status, code] of statuses) {
    test(`HttpException ${status} becomes ${code}, with its message`, async () => {
      const error = await rejectsWith(call('fail.http', status), code);
      assert.equal(error.message, `status ${status}`);
    });
  }

  test('any other error is UNKNOWN with its message', async () => {
    const error = await rejectsWith(call('fail.plain'), 'UNKNOWN');
    assert.equal(error.message, 'plain failure');
  });

  test('a ValidationPipe failure is INVALID_ARGUMENT with its messages in details', async () => {
    assert.equal(await call('validated', { a: 1, b: 2 }), 3);
    const error = await rejectsWith(call('validated', { a: 1.5, b: 2000 }), 'INVALID_ARGUMENT');
    const details = error.details as { message: string[]; statusCode: number };
    assert.equal(details.statusCode, 400);
    assert.deepEqual(details.message.sort(), [
      'a must be an integer number',
      'b must not be greater than 1000',
    ]);
  });

  test('a guard that says no is PERMISSION_DENIED; one that throws 401 is UNAUTHENTICATED', async () => {
    assert.equal(await call('guarded', { token: 'open sesame' }), 'welcome');
    await rejectsWith(call('guarded', { token: 'wrong' }), 'PERMISSION_DENIED');
    const error = await rejectsWith(call('guarded', {}), 'UNAUTHENTICATED');
    assert.equal(error.message, 'no token');
  });

  test('an interceptor maps the reply', async () => {
    assert.equal(await call('intercepted', 20), 42);
  });

  test("a controller's own exception filter decides the code", async () => {
    const error = await rejectsWith(call('fail.domain'), 'FAILED_PRECONDITION');
    assert.equal(error.message, 'domain: locked');
  });
});

describe('without RabbitRpcExceptionFilter', async () => {
  const queue = uniqueQueue('nest.nofilter');
  await startMathService(queue, {}, { filter: false });
  const call = byName(await connectForTest(), queue);

  test('RpcException({ code }) still keeps its code: Nest passes it through', async () => {
    await rejectsWith(call('fail.rpc'), 'NOT_FOUND');
  });

  test("a guard's refusal is still PERMISSION_DENIED", async () => {
    await rejectsWith(call('guarded', { token: 'wrong' }), 'PERMISSION_DENIED');
  });

  test('other exceptions are Nest\'s generic UNKNOWN "Internal server error"', async () => {
    const error = await rejectsWith(call('fail.http', 404), 'UNKNOWN');
    assert.equal(error.message, 'Internal server error');
    await rejectsWith(call('fail.rpcerror'), 'UNKNOWN');
  });
});
