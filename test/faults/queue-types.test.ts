/**
 * What rabbit-rpc's declarations get on a vhost whose default queue type is quorum (as
 * managed services set it), quorum queues' delivery limit, per-consumer prefetch on quorum
 * queues, and a refused declaration. Runs on a private node of the broker under test: the
 * system RabbitMQ 3.10 in the main pass, RabbitMQ 4.x (with 4.3's defaults) in the 4.x pass.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import { connect, type RpcConnection } from '../../src/index.js';
import { startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled } from '../helpers.js';
import { assertCode, eventually } from './fault-helpers.js';

failOnUnhandled();

const VHOST = 'quorum-default';
let broker: PrivateBroker;
/** The broker's major version: 3 or 4. */
let major: number;
let raw: AMQPClient;
let rawChannel: AMQPChannel;
const vhostUrl = () => `${broker.url}/${VHOST}`;

before(async () => {
  broker = await startPrivateBroker();
  major = Number(/^(\d+)\./.exec((await broker.ctl('version')).trim())?.[1]);
  await broker.ctl('add_vhost', VHOST, '--default-queue-type', 'quorum');
  await broker.ctl('set_permissions', '-p', VHOST, 'guest', '.*', '.*', '.*');
  raw = new AMQPClient(vhostUrl());
  await raw.connect();
  rawChannel = await raw.channel();
});
after(async () => {
  await raw.close().catch(() => undefined);
  await broker.close();
});

async function open(
  t: { after: (fn: () => Promise<void>) => void },
  options: Parameters<typeof connect>[0] & object = {},
): Promise<RpcConnection> {
  const rpc = await connect({ url: vhostUrl(), ...options });
  t.after(() => rpc.close());
  return rpc;
}

const name = (prefix: string) => `${prefix}.${randomBytes(4).toString('hex')}`;

interface QueueRow {
  name: string;
  type: string;
  durable: string;
  autoDelete: string;
  exclusive: string;
  arguments: string;
}

/** `rabbitmqctl list_queues` on the quorum-default vhost, by name. */
async function listQueues(): Promise<Map<string, QueueRow>> {
  const out = await broker.ctl(
    'list_queues',
    '-p',
    VHOST,
    '--no-table-headers',
    '--quiet',
    'name',
    'type',
    'durable',
    'auto_delete',
    'exclusive',
    'arguments',
  );
  const rows = new Map<string, QueueRow>();
  for (const line of out.split('\n')) {
    const [queue, type, durable, autoDelete, exclusive, ...rest] = line.split('\t');
    if (!queue || type === undefined) continue;
    rows.set(queue, {
      name: queue,
      type,
      durable: durable ?? '',
      autoDelete: autoDelete ?? '',
      exclusive: exclusive ?? '',
      arguments: rest.join('\t'),
    });
  }
  return rows;
}

describe('a vhost whose default queue type is quorum: what each declaration gets', () => {
  test('service queues are quorum queues by default, classic when auto-delete or asked for', async (t) => {
    const rpc = await open(t, { replyMode: 'expiring-queue' });
    const byDefault = name('svc.default');
    const autoDelete = name('svc.autodelete');
    const classic = name('svc.classic');
    await rpc.serve(byDefault, (n: number) => n + 1);
    await rpc.serve(autoDelete, (n: number) => n + 2, { autoDelete: true });
    await rpc.serve(classic, (n: number) => n + 3, { queueType: 'classic' });
    assert.equal(await rpc.call(byDefault, 1), 2);
    assert.equal(await rpc.call(autoDelete, 1), 3);
    assert.equal(await rpc.call(classic, 1), 4);

    const queues = await listQueues();
    assert.equal(queues.get(byDefault)?.type, 'quorum');
    assert.equal(queues.get(byDefault)?.durable, 'true');
    // A quorum queue cannot be auto-delete: the broker makes it classic.
    assert.equal(queues.get(autoDelete)?.type, 'classic');
    assert.equal(queues.get(autoDelete)?.autoDelete, 'true');
    assert.equal(queues.get(classic)?.type, 'classic');
    // The expiring reply queue: durable, classic whatever the vhost's default, with x-expires.
    const reply = [...queues.values()].find((row) => row.name.startsWith('rpc.reply.'));
    assert.ok(reply, [...queues.keys()].join(', '));
    assert.equal(reply.type, 'classic');
    assert.equal(reply.durable, 'true');
    assert.match(reply.arguments, /x-expires/);
    // The control queue of the serving connection: exclusive, classic.
    const control = [...queues.values()].filter((row) => row.name.startsWith('amq.gen-'));
    assert.ok(control.length > 0);
    for (const row of control) {
      assert.equal(row.type, 'classic');
      assert.equal(row.exclusive, 'true');
    }
  });

  test('the default reply queue, broadcasts, cancels and streams work on a quorum service queue', async (t) => {
    const rpc = await open(t);
    const queue = name('svc.features');
    const cancelled = deferred<string>();
    await rpc.serve(queue, async function* (request: string, ctx) {
      if (request === 'status') {
        yield 'up';
        return;
      }
      if (request === 'wait') {
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        cancelled.resolve(String((ctx.signal.reason as { code?: string }).code));
        return;
      }
      for (let i = 0; i < 3; i++) yield i;
    });
    assert.equal((await listQueues()).get(queue)?.type, 'quorum');
    const items: unknown[] = [];
    for await (const item of rpc.stream(queue, 'count')) items.push(item);
    assert.deepEqual(items, [0, 1, 2]);
    const answers = await rpc.broadcast(queue, 'status', { timeoutMs: 1_500, max: 1 });
    assert.equal(answers.length, 1);
    const abort = new AbortController();
    const stream = rpc.stream(queue, 'wait', { signal: abort.signal });
    const waiting = stream.next();
    waiting.catch(() => undefined);
    await eventually(() => rpc.stats().servers[0]?.active === 1, 'the handler to run');
    abort.abort();
    assert.equal(await cancelled.promise, 'CANCELLED');
  });

  test('prefetch bounds concurrency on a quorum queue: per-consumer QoS, never global', async (t) => {
    // RabbitMQ 4.3 refuses basic.qos with global = true (the 4.x pass's node does too).
    const rpc = await open(t);
    const queue = name('svc.prefetch');
    let running = 0;
    let most = 0;
    const release = deferred();
    const twoRunning = deferred();
    await rpc.serve(
      queue,
      async () => {
        running++;
        most = Math.max(most, running);
        if (running === 2) twoRunning.resolve();
        await release.promise;
        running--;
        return most;
      },
      { prefetch: 2 },
    );
    const calls = Array.from({ length: 5 }, () => rpc.call(queue, null));
    await twoRunning.promise;
    // The broker holds the other 3 while 2 are unacked: nothing more arrives.
    assert.equal((await rawChannel.queueDeclare(queue, { passive: true })).messageCount, 3);
    release.resolve();
    await Promise.all(calls);
    assert.equal(most, 2);
  });
});

describe("quorum queues' delivery limit", () => {
  test('a request that keeps going back to the queue: dropped after 20 returns on 4.x, never on 3.x', async (t) => {
    const queue = name('svc.limit');
    // Where requests over the limit go, so that both outcomes are events to wait for.
    const dead = name('dead');
    await rawChannel.queueDeclare(dead, { durable: true }, { 'x-queue-type': 'classic' });
    const deadLetter = deferred<AMQPMessage>();
    await rawChannel.basicConsume(dead, { noAck: true }, (message) => deadLetter.resolve(message));
    const rpc = await open(t);
    const counts: unknown[] = [];
    // Each round: a server takes the request, then closes without waiting for its handler
    // (drainTimeoutMs: 0), which gives the request back to the queue, as a crash would.
    const serveOnce = async (): Promise<boolean> => {
      const got = deferred<boolean>();
      const server = await rpc.serve(
        queue,
        async (_request, ctx) => {
          counts.push(ctx.headers['x-delivery-count'] ?? 0);
          got.resolve(true);
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        },
        { deadLetterExchange: '', deadLetterRoutingKey: dead, drainTimeoutMs: 0 },
      );
      const outcome = await Promise.race([got.promise, deadLetter.promise.then(() => false)]);
      await server.close();
      return outcome;
    };
    await rpc
      .serve(queue, () => null, { deadLetterExchange: '', deadLetterRoutingKey: dead })
      .then((server) => server.close());
    await rawChannel.basicPublish('', queue, '"work"', { contentType: 'application/json' });
    while (counts.length < 22 && (await serveOnce()));
    if (major >= 4) {
      // The first delivery and 20 redeliveries, then the broker's default limit (4.0+).
      assert.equal(counts.length, 21);
      assert.equal(Number(counts.at(-1)), 20);
      const death = (await deadLetter.promise).properties.headers?.['x-death'];
      assert.match(JSON.stringify(death), /delivery_limit/);
    } else {
      assert.equal(counts.length, 22, 'no default limit before 4.0');
      assert.equal(Number(counts.at(-1)), 21);
    }
    assert.equal((await listQueues()).get(queue)?.type, 'quorum');
  });
});

describe('a declaration the broker refuses', () => {
  test('without configure permission: PERMISSION_DENIED naming the queue and declare: false', async (t) => {
    const user = name('svc-user');
    await broker.ctl('add_user', user, 'secret');
    // Read and write everywhere, configure only on the control plane.
    await broker.ctl(
      'set_permissions',
      '-p',
      VHOST,
      user,
      '^(amq\\.gen-.*|rabbit-rpc\\.control)$',
      '.*',
      '.*',
    );
    const queue = name('svc.denied');
    await rawChannel.queueDeclare(queue, { durable: true });
    const rpc = await connect(`amqp://${user}:secret@127.0.0.1:${broker.port}/${VHOST}`);
    t.after(() => rpc.close());
    const error = await rpc
      .serve(queue, () => 'x')
      .then(
        () => assert.fail('serve() should have failed'),
        (thrown: unknown) => assertCode(thrown, 'PERMISSION_DENIED'),
      );
    assert.ok(error.message.includes(`"${queue}"`), error.message);
    assert.ok(error.message.includes('ACCESS_REFUSED'), error.message);
    assert.ok(error.message.includes('declare: false'), error.message);
    // What the message suggests works.
    await rpc.serve(queue, () => 'as is', { declare: false });
    assert.equal(await rpc.call(queue, null), 'as is');
  });
});
