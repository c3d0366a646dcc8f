/**
 * Scale-out (scenario 25 of docs/reliability.md): a 3-node private cluster, a quorum
 * service queue, client and server connected to node 1 with all three URLs. Node 1 is
 * killed (SIGKILL) while calls run: both sides move to another node, calls continue, and
 * no call is silently lost or hangs. Without publisher confirms the caller's first channel
 * on the new node stayed bound to the dead leader and every later call timed out.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, RpcError } from '../../src/index.js';
import { startPrivateCluster, type PrivateCluster } from '../../src/testing/index.js';
import { failOnUnhandled, uniqueQueue } from '../helpers.js';
import { eventually, FAST_RECONNECT, waitForState } from '../faults/fault-helpers.js';

failOnUnhandled();

let cluster: PrivateCluster;
before(async () => {
  cluster = await startPrivateCluster(3);
});
after(() => cluster.close());

test('killing the node both sides use: they move to another node and calls go on', async (t) => {
  const urls = cluster.urls;
  const serving = await connect({ url: urls, reconnect: FAST_RECONNECT });
  const calling = await connect({ url: urls, reconnect: FAST_RECONNECT });
  t.after(() => Promise.all([serving.close(), calling.close()]).then(() => undefined));
  const [first] = cluster.nodes;
  assert.ok(first);
  assert.equal(calling.url, first.url.replace('guest:guest', 'guest:***'));
  const queue = uniqueQueue('cluster');
  const server = await serving.serve(queue, (n: number) => n, { queueType: 'quorum' });

  const CALL_TIMEOUT_MS = 10_000;
  const outcomes: Array<{ n: number; ok: boolean; code?: string; ms: number }> = [];
  let stop = false;
  let n = 0;
  const loop = (async () => {
    while (!stop) {
      const started = Date.now();
      const i = n++;
      try {
        const reply = await calling.call<number>(queue, i, { timeoutMs: CALL_TIMEOUT_MS });
        assert.equal(reply, i);
        outcomes.push({ n: i, ok: true, ms: Date.now() - started });
      } catch (error) {
        const code = error instanceof RpcError ? error.code : String(error);
        outcomes.push({ n: i, ok: false, code, ms: Date.now() - started });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  await eventually(() => outcomes.length >= 20, 'calls before the kill');
  const before = outcomes.length;
  const killedAt = Date.now();
  await first.kill();
  await Promise.all([waitForState(calling, 'connected'), waitForState(serving, 'connected')]);
  await eventually(() => server.stats.recoveries === 1, 'the server to consume on another node');
  const movedAt = Date.now();
  const afterMove = outcomes.length;
  await eventually(() => outcomes.slice(afterMove).filter((o) => o.ok).length >= 20, 'calls after');
  stop = true;
  await loop;

  const failed = outcomes.filter((o) => !o.ok);
  const slowest = Math.max(...outcomes.map((o) => o.ms));
  t.diagnostic(
    `${outcomes.length} calls (${before} before the kill); moved ${movedAt - killedAt} ms after the kill ` +
      `to ${calling.url}; failed: ${JSON.stringify(failed)}; slowest call ${slowest} ms`,
  );
  assert.notEqual(calling.url, first.url.replace('guest:guest', 'guest:***'));
  // Calls pending at the kill, and the few the new node refuses (nack) while the quorum
  // queue elects a leader, fail at once with UNAVAILABLE (safe to retry: the broker took
  // nothing). Nothing else may go wrong, and nothing waits for its deadline.
  for (const failure of failed) assert.equal(failure.code, 'UNAVAILABLE');
  assert.ok(slowest < CALL_TIMEOUT_MS, 'a call hung until its deadline');
  assert.equal(calling.stats().pending, 0);
});
