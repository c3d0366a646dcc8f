/**
 * Passwords never reach an error, a log line or `rpc.url`, whatever the URL looks like
 * (issue 13, defect 6): redactUrl reads the text, not what a URL parser makes of it.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import { connect, RpcError } from '../../src/index.js';
import { resolveConnectOptions } from '../../src/options/connect.js';
import { redactUrl } from '../../src/options/url.js';
import { HOSTILE_URLS } from '../hostile-urls.js';

describe('redactUrl', () => {
  test('hides the password, keeps the user, host, port and vhost', () => {
    assert.equal(redactUrl('amqp://user:secret@host:5672/vh'), 'amqp://user:***@host:5672/vh');
    assert.equal(redactUrl('amqps://user@host'), 'amqps://user@host');
    assert.equal(redactUrl('amqp://host:5672/vh'), 'amqp://host:5672/vh');
    assert.equal(redactUrl('amqp://u:p:w@host'), 'amqp://u:***@host');
    assert.equal(redactUrl('user:secret@host'), 'user:***@host');
  });

  test('hides every form of a password a URL parser misreads', () => {
    for (const [what, url] of HOSTILE_URLS) {
      const shown = redactUrl(url);
      assert.doesNotMatch(shown, /Sup3r|Secret/, what);
      assert.equal(shown, 'amqp://guest:***@127.0.0.1:1', what);
    }
    // A '/' in the user name: nothing before the '@' can be shown.
    assert.equal(redactUrl('amqp://us/er:secret@host'), 'amqp://***@host');
  });
});

describe('errors and logs about hostile URLs', () => {
  test('connect() options: a URL cut short by a special character is INVALID_ARGUMENT, with a hint', () => {
    for (const [what, url] of HOSTILE_URLS.slice(0, 4)) {
      assert.throws(
        () => resolveConnectOptions(url),
        (error: unknown) =>
          error instanceof RpcError &&
          error.code === 'INVALID_ARGUMENT' &&
          !/Sup3r|Secret/.test(inspect(error, { depth: 10 })) &&
          /percent-encode/.test(error.message),
        what,
      );
    }
    // An '@' in the password is read as it was meant: the last '@' ends the user information.
    assert.equal(resolveConnectOptions(HOSTILE_URLS[4]?.[1]).urls.length, 1);
    // A vhost with '@' must be encoded (%40) now, as it is ambiguous unencoded.
    assert.equal(resolveConnectOptions('amqp://u:p@host/v%40x').urls.length, 1);
  });

  test('connect(): the error, its causes and the log lines never hold the password', async () => {
    for (const [what, url] of HOSTILE_URLS) {
      const lines: string[] = [];
      const log = (context: unknown, message: string): void => {
        lines.push(inspect(context, { depth: 10 }), message);
      };
      const logger = { debug: log, info: log, warn: log, error: log };
      const error = await connect({ url, reconnect: false, connectTimeoutMs: 2_000, logger }).then(
        (rpc) => rpc.close().then(() => assert.fail(`${what}: connected`)),
        (thrown: unknown) => thrown,
      );
      assert.ok(error instanceof RpcError, what);
      const everything = [inspect(error, { depth: 10 }), String(error), ...lines].join('\n');
      assert.doesNotMatch(everything, /Sup3r|Secret/, `${what}:\n${everything}`);
    }
  });
});
