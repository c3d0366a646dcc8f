import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { connect } from '../../src/index.js';
import { amqpAnswers, startPrivateCluster, type PrivateCluster } from '../../src/testing/index.js';
import { uniqueQueue } from '../helpers.js';

let cluster: PrivateCluster;
let startedIn = 0;
before(async () => {
  const started = Date.now();
  cluster = await startPrivateCluster(3);
  startedIn = Date.now() - started;
});
after(() => cluster.close());

test('three private nodes form one cluster', async (t) => {
  t.diagnostic(`3-node cluster ready in ${startedIn} ms`);
  assert.equal(cluster.nodes.length, 3);
  assert.equal(new Set(cluster.urls).size, 3);
  const status = JSON.parse(
    (await cluster.nodes[0]?.ctl('cluster_status', '--formatter', 'json')) ?? '{}',
  ) as {
    running_nodes?: string[];
  };
  assert.deepEqual(
    [...(status.running_nodes ?? [])].sort(),
    cluster.nodes.map((node) => node.nodeName).sort(),
  );
});

test('a call crosses nodes, and survives the crash of a node nobody uses', async () => {
  const [first, second, third] = cluster.nodes;
  assert.ok(first && second && third);
  const server = await connect(first.url);
  const caller = await connect(third.url);
  try {
    const queue = uniqueQueue('cluster');
    await server.serve(queue, (n: number) => n + 1);
    assert.equal(await caller.call(queue, 1, { timeoutMs: 5000 }), 2);
    await second.kill();
    assert.equal(await amqpAnswers(second.port, '127.0.0.1', 500), false);
    assert.equal(await caller.call(queue, 2, { timeoutMs: 5000 }), 3);
  } finally {
    await Promise.all([server.close(), caller.close()]);
  }
});

test('close() stops every node and removes the folder', async () => {
  const dir = cluster.nodes[0]?.dir ?? '';
  await cluster.close();
  for (const node of cluster.nodes) {
    assert.equal(node.state, 'closed');
    assert.equal(await amqpAnswers(node.port, '127.0.0.1', 500), false);
  }
  await assert.rejects(stat(dir), { code: 'ENOENT' });
});
