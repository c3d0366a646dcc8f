import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_CODES, RpcError, isRpcErrorCode } from '../../src/errors.js';

test('the codes are the 16 canonical gRPC status names other than OK', () => {
  assert.equal(ERROR_CODES.length, 16);
  assert.ok(!(ERROR_CODES as readonly string[]).includes('OK'));
  for (const code of ['CANCELLED', 'DEADLINE_EXCEEDED', 'UNAVAILABLE', 'UNIMPLEMENTED']) {
    assert.ok(isRpcErrorCode(code));
  }
  assert.equal(isRpcErrorCode('CANCELED'), false);
  assert.equal(isRpcErrorCode(4), false);
});

test('RpcError carries code, details, cause and its name', () => {
  const cause = new Error('disk');
  const error = new RpcError('NOT_FOUND', 'no user 7', { details: { id: 7 }, cause });
  assert.ok(error instanceof Error);
  assert.equal(error.name, 'RpcError');
  assert.equal(error.code, 'NOT_FOUND');
  assert.deepEqual(error.details, { id: 7 });
  assert.equal(error.cause, cause);
});

test('a code outside the closed set is refused', () => {
  // @ts-expect-error the type system refuses it too
  assert.throws(() => new RpcError('TEAPOT', 'x'), TypeError);
});

test('RpcError.from keeps RpcErrors and wraps anything else', () => {
  const original = new RpcError('ABORTED', 'x');
  assert.equal(RpcError.from(original), original);
  const wrapped = RpcError.from(new Error('boom'));
  assert.equal(wrapped.code, 'UNKNOWN');
  assert.equal(wrapped.message, 'boom');
  assert.equal(RpcError.from('text', 'INTERNAL').code, 'INTERNAL');
});

interface ErrorsModule {
  RpcError: typeof RpcError;
}

test('instanceof RpcError holds for an RpcError from another copy of the library', async () => {
  // A second, separately loaded copy of the module stands for the CJS build or a bundle.
  const copy = (await import(`../../src/errors.ts?copy=${Date.now()}`)) as ErrorsModule;
  assert.notEqual(copy.RpcError, RpcError);
  const foreign = new copy.RpcError('NOT_FOUND', 'elsewhere');
  assert.ok(foreign instanceof RpcError);
  assert.equal(RpcError.from(foreign), foreign, 'kept as is, code and all');
  assert.ok(!(new Error('plain') instanceof RpcError));
  assert.ok(!(({ code: 'NOT_FOUND' } as unknown) instanceof RpcError));
});

test('connect failures: refused logins and untrusted certificates are permanent, refusals are not', async () => {
  const { connectError, isPermanent } = await import('../../src/transport/errors.js');
  const url = 'amqps://user:secret@host:5671';
  const login = connectError(
    new Error('connection closed: ACCESS_REFUSED - Login was refused (403)'),
    url,
  );
  assert.equal(login.code, 'UNAUTHENTICATED');
  assert.ok(!login.message.includes('secret'));
  assert.equal(isPermanent(login), true);
  const vhost = connectError(
    new Error('connection closed: NOT_ALLOWED - vhost x not found (530)'),
    url,
  );
  assert.equal(vhost.code, 'PERMISSION_DENIED');
  const certificate = connectError(new Error('self-signed certificate in certificate chain'), url);
  assert.equal(certificate.code, 'UNAVAILABLE');
  assert.equal(isPermanent(certificate), true);
  const refused = connectError(new Error('connect ECONNREFUSED 127.0.0.1:5671'), url);
  assert.equal(refused.code, 'UNAVAILABLE');
  assert.equal(isPermanent(refused), false);
});
