import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveTimeoutMs } from '../../src/options/call.js';
import { CONNECT_DEFAULTS, resolveConnectOptions } from '../../src/options/connect.js';
import { resolveServeOptions } from '../../src/options/serve.js';
import { redactUrl } from '../../src/options/url.js';

test('a URL string or an options object; defaults filled in', () => {
  const fromString = resolveConnectOptions('amqp://u:p@h:5672/v');
  assert.deepEqual(fromString.urls, ['amqp://u:p@h:5672/v']);
  assert.equal(fromString.defaultTimeoutMs, CONNECT_DEFAULTS.defaultTimeoutMs);
  assert.equal(fromString.frameMax, 131_072);
  const fromObject = resolveConnectOptions({ url: ['amqp://a', 'amqps://b'], heartbeatSec: 0 });
  assert.deepEqual(fromObject.urls, ['amqp://a', 'amqps://b']);
  assert.equal(fromObject.heartbeatSec, 0);
});

test('wrong URLs and bad options are INVALID_ARGUMENT', () => {
  for (const bad of ['http://localhost', 'not a url', '']) {
    assert.throws(() => resolveConnectOptions(bad), { code: 'INVALID_ARGUMENT' }, bad);
  }
  assert.throws(() => resolveConnectOptions({ url: [] }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => resolveConnectOptions({ connectTimeoutMs: 0 }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => resolveConnectOptions({ frameMax: 100 }), { code: 'INVALID_ARGUMENT' });
  // @ts-expect-error run-time check for JavaScript callers
  assert.throws(() => resolveConnectOptions({ replyMode: 'fast' }), { code: 'INVALID_ARGUMENT' });
  assert.throws(() => resolveServeOptions({ prefetch: 0 }), { code: 'INVALID_ARGUMENT' });
  // @ts-expect-error run-time check for JavaScript callers
  assert.throws(() => resolveServeOptions({ durable: 'yes' }), { code: 'INVALID_ARGUMENT' });
});

test('timeoutMs must be a positive integer within the timer range', () => {
  assert.equal(resolveTimeoutMs(undefined, 123), 123);
  assert.equal(resolveTimeoutMs(5, 123), 5);
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity, 2 ** 31]) {
    assert.throws(() => resolveTimeoutMs(bad, 1), { code: 'INVALID_ARGUMENT' }, String(bad));
  }
});

test('passwords never show in redacted URLs or in errors about URLs', () => {
  assert.equal(redactUrl('amqp://user:secret@host:5672/vh'), 'amqp://user:***@host:5672/vh');
  assert.throws(
    () => resolveConnectOptions('http://user:secret@host'),
    (error: Error) => !error.message.includes('secret'),
  );
});

test('batch: negotiated by default (D36); true batches without asking; false never', () => {
  const defaults = { maxCalls: 64, maxBytes: 256 * 1024 };
  assert.deepEqual(resolveConnectOptions({}).batch, { ...defaults, negotiate: true });
  assert.deepEqual(resolveConnectOptions({ batch: true }).batch, {
    ...defaults,
    negotiate: false,
  });
  assert.equal(resolveConnectOptions({ batch: false }).batch, false);
  assert.deepEqual(resolveConnectOptions({ batch: { maxCalls: 8 } }).batch, {
    ...defaults,
    maxCalls: 8,
    negotiate: true,
  });
  assert.throws(
    () => resolveConnectOptions({ batch: { negotiate: 'yes' as never } }),
    /batch.negotiate/,
  );
});
