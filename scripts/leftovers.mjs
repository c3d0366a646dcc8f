// The check after the suite: the queues and exchanges this test run created on the shared
// broker must be gone. Used by scripts/test.mjs; see docs/testing.md, "Nothing left behind".
//
// Other runs, other programs and other people may use the same broker at the same time, so
// a before/after comparison would blame this run for their queues. Instead, every name the
// tests create carries this run's id (RABBIT_RPC_TEST_RUN, see test/helpers.ts), and the
// check looks for that id only, in one of two ways:
//
//   - rabbitmqctl, when it can talk to the broker (root on the broker's machine, as in CI,
//     and the broker is the local one on port 5672): every queue and exchange whose name
//     holds the run id, whoever made it (the tests, the CLI they start, Python peers);
//   - otherwise the ledger: the names the test helpers recorded (RABBIT_RPC_TEST_LEDGER),
//     each looked up with a passive declare over AMQP, which creates nothing.
//
// Auto-delete and exclusive queues go a moment after their connection closes: the check
// looks again for a few seconds before it reports anything.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { URL } from 'node:url';
import { AMQPClient } from '@cloudamqp/amqp-client';

const SETTLE_MS = 5_000;

/**
 * The names holding `runId` still on the broker at `url`, after up to SETTLE_MS of waiting
 * for them to go: `{ how, queues, exchanges }`, `how` saying which way they were found.
 */
export async function findLeftovers({ url, runId, ledger, rabbitmqctl, settleMs = SETTLE_MS }) {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const found = await lookOnce({ url, runId, ledger, rabbitmqctl });
    const left = found.queues.length + found.exchanges.length;
    if (left === 0 || Date.now() > deadline) return found;
    await sleep(250);
  }
}

async function lookOnce({ url, runId, ledger, rabbitmqctl }) {
  const listed =
    rabbitmqctl && isLocalBroker(url) ? listWithRabbitmqctl(rabbitmqctl, url, runId) : undefined;
  if (listed) return { how: 'rabbitmqctl', ...listed };
  return { how: 'ledger', queues: await existingQueues(url, ledgerNames(ledger)), exchanges: [] };
}

/** rabbitmqctl speaks to the node on this machine: only then is its list the broker's. */
function isLocalBroker(url) {
  const { hostname, port } = new URL(url);
  return (
    ['localhost', '127.0.0.1', '::1', '[::1]'].includes(hostname) &&
    (port === '' || port === '5672')
  );
}

/** `{ queues, exchanges }` holding `runId`, or undefined when rabbitmqctl cannot answer. */
function listWithRabbitmqctl(rabbitmqctl, url, runId) {
  const vhost = decodeURIComponent(new URL(url).pathname.slice(1)) || '/';
  const list = (what) => {
    const result = spawnSync(rabbitmqctl, ['-q', '-p', vhost, what, 'name', '--no-table-headers'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (result.status !== 0) return undefined;
    return result.stdout.split('\n').filter((name) => name.includes(runId));
  };
  const queues = list('list_queues');
  const exchanges = queues && list('list_exchanges');
  return queues && exchanges ? { queues, exchanges } : undefined;
}

function ledgerNames(ledger) {
  if (!ledger || !existsSync(ledger)) return [];
  const names = new Set();
  for (const line of readFileSync(ledger, 'utf8').split('\n')) {
    if (line.startsWith('queue ')) names.add(line.slice('queue '.length));
  }
  return [...names];
}

/** Those of `names` that exist, by passive declares (a 404 closes the channel: a new one). */
async function existingQueues(url, names) {
  if (names.length === 0) return [];
  const client = new AMQPClient(url);
  await client.connect();
  const existing = [];
  try {
    let channel = await client.channel();
    for (const name of names) {
      if (channel.closed) channel = await client.channel();
      try {
        await channel.queueDeclare(name, { passive: true });
        existing.push(name);
      } catch {
        // 404: gone, as it should be.
      }
    }
  } finally {
    await client.close().catch(() => undefined);
  }
  return existing;
}

/** The leftovers as lines for the test output, or '' when there are none. */
export function describeLeftovers({ how, queues, exchanges }) {
  if (queues.length + exchanges.length === 0) return '';
  const lines = [
    `== leftovers: this run left ${queues.length} queue(s) and ${exchanges.length} exchange(s) ` +
      `on the broker (found with ${how}); a test must delete what it creates (test/helpers.ts: ` +
      'uniqueQueue, uniqueServiceName, deleteAtExit):',
  ];
  for (const name of queues) lines.push(`   queue    ${name}`);
  for (const name of exchanges) lines.push(`   exchange ${name}`);
  return lines.join('\n');
}
