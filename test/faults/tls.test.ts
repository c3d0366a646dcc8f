/**
 * TLS (issue item 10, scenario 21): amqps:// against a private broker with a throwaway CA.
 * Certificate and hostname verification are on by default; every misconfiguration fails
 * connect() fast with UNAVAILABLE and is not retried.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from '../../src/index.js';
import {
  createTestCertificates,
  FaultProxy,
  startPrivateBroker,
  type PrivateBroker,
} from '../../src/testing/index.js';
import { failOnUnhandled, uniqueQueue } from '../helpers.js';
import { rejectsWith } from './fault-helpers.js';

failOnUnhandled();

let broker: PrivateBroker;
let amqpsUrl: string;
let ca: string;
before(async () => {
  broker = await startPrivateBroker({ tls: true });
  assert.ok(broker.amqpsUrl !== undefined && broker.caPem !== undefined);
  amqpsUrl = broker.amqpsUrl;
  ca = broker.caPem;
});
after(() => broker.close());

/** Fails connect() through a proxy and returns how long it took and how many TCP connections it made. */
async function failingConnect(url: string, tls: { ca?: string; servername?: string } = {}) {
  await using proxy = await FaultProxy.start(url);
  const target = new URL(proxy.url(url));
  // Keep the host name of the original URL (the certificate is checked against it).
  target.hostname = new URL(url).hostname;
  const started = Date.now();
  await assert.rejects(connect({ url: target.toString(), tls }), rejectsWith('UNAVAILABLE'));
  return { took: Date.now() - started, attempts: proxy.accepted };
}

describe('amqps://', () => {
  test('with the right CA: connects, calls and serves over TLS', async (t) => {
    const rpc = await connect({ url: amqpsUrl, tls: { ca } });
    t.after(() => rpc.close());
    const queue = uniqueQueue('tls');
    await rpc.serve(queue, (n: number) => n * 2);
    assert.equal(await rpc.call(queue, 21, { timeoutMs: 5000 }), 42);
    // The broker sees a TLS connection.
    const listing = await broker.ctl('list_connections', 'ssl', 'ssl_protocol', '--quiet');
    assert.match(listing, /true\s+tlsv1\.[23]/);
  });

  test('verification is on by default: without the CA, the self-signed chain is refused', async (t) => {
    const { took, attempts } = await failingConnect(amqpsUrl);
    t.diagnostic(`unknown CA refused in ${took} ms`);
    assert.ok(took < 2000, `took ${took} ms`);
    assert.equal(attempts, 1, 'connect() retried a certificate error');
  });

  test('a certificate from another CA is refused', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rabbit-rpc-other-ca-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const other = await createTestCertificates(dir);
    const { took, attempts } = await failingConnect(amqpsUrl, { ca: other.caPem });
    t.diagnostic(`wrong CA refused in ${took} ms`);
    assert.ok(took < 2000, `took ${took} ms`);
    assert.equal(attempts, 1);
  });

  test('a host name the certificate does not name is refused', async (t) => {
    const { took, attempts } = await failingConnect(amqpsUrl, {
      ca,
      servername: 'not-the-broker.example',
    });
    t.diagnostic(`wrong host name refused in ${took} ms`);
    assert.ok(took < 2000, `took ${took} ms`);
    assert.equal(attempts, 1);
  });

  test('amqps:// to the plain AMQP port fails fast', async (t) => {
    const url = broker.url.replace('amqp://', 'amqps://');
    const { took, attempts } = await failingConnect(url, { ca });
    t.diagnostic(`amqps to the plain port failed in ${took} ms`);
    assert.ok(took < 2000, `took ${took} ms`);
    assert.equal(attempts, 1);
  });

  test('amqp:// to the TLS port fails fast', async (t) => {
    const url = amqpsUrl.replace('amqps://', 'amqp://');
    const { took, attempts } = await failingConnect(url);
    t.diagnostic(`plain amqp to the TLS port failed in ${took} ms`);
    assert.ok(took < 5000, `took ${took} ms`);
    assert.equal(attempts, 1);
  });
});
