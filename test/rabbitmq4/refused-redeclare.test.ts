/**
 * RabbitMQ 4.x only (scripts/test.mjs runs this suite in its 4.x pass, on a private node of
 * the 4.x installation): a broker that starts refusing a deprecated feature after a restart,
 * as an upgrade to 4.3 does with non-durable shared queues. The server that relied on it
 * stops with an error saying what to change, instead of reconnecting in a loop.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect } from '../../src/index.js';
import { startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { failOnUnhandled } from '../helpers.js';
import { assertCode, FAST_RECONNECT, waitForState } from '../faults/fault-helpers.js';

failOnUnhandled();

const PERMIT = 'deprecated_features.permit.transient_nonexcl_queues';
/** As RabbitMQ 4.0-4.2 by default: non-durable shared queues are permitted. */
let before43: PrivateBroker;
/** With 4.3's default (the root's conf.d): refused. */
let as43: PrivateBroker;
before(async () => {
  [before43, as43] = await Promise.all([
    startPrivateBroker({ config: `${PERMIT} = true` }),
    startPrivateBroker(),
  ]);
  assert.match(await as43.ctl('version'), /^4\./, 'this suite needs RabbitMQ 4.x');
});
after(() => Promise.all([before43.close(), as43.close()]));

test('a server of a non-durable queue, after an upgrade that refuses it: stops with FAILED_PRECONDITION, no reconnect loop', async (t) => {
  // The upgrade is a move to another node: a node that held a non-durable queue refuses to
  // boot with the feature denied (failed_to_deny_deprecated_features), so the same node
  // cannot show it. The connection's URL list tries the old node, then the new one.
  const rpc = await connect({ url: [before43.url, as43.url], reconnect: FAST_RECONNECT });
  t.after(() => rpc.close());
  const transient = await rpc.serve('svc.transient', () => 'transient', { durable: false });
  await rpc.serve('svc.durable', () => 'durable');
  assert.equal(await rpc.call('svc.transient', null), 'transient');

  await before43.close();

  const error = assertCode(await transient.closed, 'FAILED_PRECONDITION');
  assert.ok(error.message.includes('"svc.transient"'), error.message);
  assert.ok(error.message.includes('durable: false'), error.message);
  assert.ok(error.message.includes(`${PERMIT} = true`), error.message);
  // The refusal (541) closed the connection once more; it comes back and stays.
  await waitForState(rpc, 'connected');
  assert.equal(await rpc.call('svc.durable', null), 'durable');
  const reconnects = rpc.stats().reconnects;
  assert.ok(reconnects <= 2, `reconnected ${reconnects} times`);
  assert.equal(await rpc.call('svc.durable', null), 'durable');
  assert.equal(rpc.stats().reconnects, reconnects);
  assert.deepEqual(
    rpc.stats().servers.map((server) => server.queue),
    ['svc.durable'],
  );
});
