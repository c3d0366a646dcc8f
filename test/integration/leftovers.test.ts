// The check after the suite (scripts/leftovers.mjs) finds what a run left on the broker, by
// its run id, both ways: with rabbitmqctl where it works, and from the ledger otherwise.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
// @ts-expect-error a JavaScript module of the test runner, without types
import { describeLeftovers, findLeftovers } from '../../scripts/leftovers.mjs';
import { AMQP_URL } from '../helpers.js';

interface Found {
  how: string;
  queues: string[];
  exchanges: string[];
}
const find = findLeftovers as (options: Record<string, unknown>) => Promise<Found>;
const describe = describeLeftovers as (found: Found) => string;

test('a queue holding the run id is reported until it is deleted', async () => {
  // A run id of its own: the real run's check must not see this test's queue.
  const runId = `r${randomBytes(4).toString('hex')}`;
  const queue = `test.leftover.${runId}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rabbit-rpc-leftovers-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const ledger = path.join(dir, 'created');
  writeFileSync(ledger, `queue ${queue}\nqueue test.never.created.${runId}\n`);
  const client = new AMQPClient(AMQP_URL);
  await client.connect();
  after(() => client.close());
  const channel = await client.channel();
  await channel.queueDeclare(queue, { autoDelete: false });
  try {
    const byLedger = await find({
      url: AMQP_URL,
      runId,
      ledger,
      rabbitmqctl: undefined,
      settleMs: 0,
    });
    assert.deepEqual(byLedger, { how: 'ledger', queues: [queue], exchanges: [] });
    assert.match(describe(byLedger), new RegExp(`queue +${queue}`));
    // rabbitmqctl: a missing command falls back to the ledger; a working one lists it.
    const either = await find({
      url: AMQP_URL,
      runId,
      ledger,
      rabbitmqctl: 'rabbitmqctl',
      settleMs: 0,
    });
    assert.deepEqual(either.queues, [queue], either.how);
  } finally {
    await channel.queueDelete(queue);
  }
  const none = await find({
    url: AMQP_URL,
    runId,
    ledger,
    rabbitmqctl: 'rabbitmqctl',
    settleMs: 0,
  });
  assert.deepEqual([...none.queues, ...none.exchanges], []);
  assert.equal(describe(none), '');
});
