/** ConnectOptions.userId and ServeOptions.requireUserId: defaults and validation. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromAmqpError } from '../../src/transport/errors.js';
import { resolveConnectOptions } from '../../src/options/connect.js';
import { resolveServeOptions } from '../../src/options/serve.js';

test("userId defaults to the URL's user name, decoded, else guest (the client's login)", () => {
  assert.equal(resolveConnectOptions('amqp://alice:pw@host').userId, 'alice');
  assert.equal(resolveConnectOptions('amqp://j%C3%BCrgen%40x:pw@host/v').userId, 'jürgen@x');
  assert.equal(resolveConnectOptions('amqp://host:5672').userId, 'guest');
  assert.equal(resolveConnectOptions({ url: ['amqp://bob@a', 'amqps://bob:pw@b'] }).userId, 'bob');
});

test('userId: a string is sent as it is; false sends none', () => {
  assert.equal(resolveConnectOptions({ url: 'amqps://host', userId: 'CN=svc' }).userId, 'CN=svc');
  assert.equal(
    resolveConnectOptions({ url: 'amqp://alice@host', userId: false }).userId,
    undefined,
  );
});

test('URLs with different users need an explicit userId', () => {
  const url = ['amqp://alice:pw@a', 'amqp://bob:pw@b'];
  assert.throws(() => resolveConnectOptions({ url }), { code: 'INVALID_ARGUMENT' });
  assert.equal(resolveConnectOptions({ url, userId: false }).userId, undefined);
  assert.equal(resolveConnectOptions({ url, userId: 'alice' }).userId, 'alice');
});

test('a bad userId is INVALID_ARGUMENT', () => {
  for (const bad of ['', true, 42, null, 'x'.repeat(256)]) {
    assert.throws(
      // @ts-expect-error run-time check for JavaScript callers
      () => resolveConnectOptions({ url: 'amqp://host', userId: bad }),
      { code: 'INVALID_ARGUMENT' },
      String(bad),
    );
  }
  assert.throws(() => resolveConnectOptions('amqp://bad%zz:pw@host'), {
    code: 'INVALID_ARGUMENT',
  });
});

test('requireUserId is off by default and must be a boolean', () => {
  assert.equal(resolveServeOptions().requireUserId, false);
  assert.equal(resolveServeOptions({ requireUserId: true }).requireUserId, true);
  // @ts-expect-error run-time check for JavaScript callers
  assert.throws(() => resolveServeOptions({ requireUserId: 'yes' }), { code: 'INVALID_ARGUMENT' });
});

test("the broker's refusal of a forged user_id is PERMISSION_DENIED; other 406s are not", () => {
  const forged = new Error(
    "channel 1 closed: PRECONDITION_FAILED - user_id property set to 'alice' but authenticated user was 'bob' (406)",
  );
  assert.equal(fromAmqpError(forged, 'publishing').code, 'PERMISSION_DENIED');
  const other = new Error('channel 1 closed: PRECONDITION_FAILED - inequivalent arg (406)');
  assert.equal(fromAmqpError(other, 'declaring').code, 'FAILED_PRECONDITION');
});
