import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type ConnectionState, type RpcConnection } from '../../src/index.js';
import { startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { failOnUnhandled } from '../helpers.js';
import { measured, total } from './otel-helpers.js';

failOnUnhandled();

/** Resolves when `rpc` is connected again after having been `reconnecting`. */
function reconnected(rpc: RpcConnection): Promise<void> {
  return new Promise((resolve) => {
    let lost = false;
    const stop = rpc.onStateChange((state: ConnectionState) => {
      if (state === 'reconnecting') lost = true;
      else if (state === 'connected' && lost) {
        stop();
        resolve();
      }
    });
  });
}

// A private broker: cutting connections must not touch the shared one.
describe('metrics: reconnects', () => {
  let broker: PrivateBroker;
  before(async () => {
    broker = await startPrivateBroker();
  });
  after(() => broker.close());

  test('observe(rpc) counts reconnects until it is stopped', async () => {
    const { measure, read } = measured();
    const rpc = await connect({
      url: broker.url,
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    });
    after(() => rpc.close());
    const stop = measure.observe(rpc);

    const first = reconnected(rpc);
    await broker.closeAllConnections();
    await first;
    const labels = { 'server.address': '127.0.0.1', 'server.port': broker.port };
    assert.equal(total(await read(), 'rabbit_rpc.connection.reconnects', labels), 1);
    assert.equal(rpc.stats().reconnects, 1);

    stop();
    const second = reconnected(rpc);
    await broker.closeAllConnections();
    await second;
    assert.equal(rpc.stats().reconnects, 2);
    assert.equal(total(await read(), 'rabbit_rpc.connection.reconnects', labels), 1);
  });
});
