// `rabbit-rpc ping`, against the real broker at AMQP_URL.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { connect as connectTcp, createServer, type Socket } from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { connect, defineService, method, type RpcConnection } from '../../src/index.js';
import { AMQP_URL, connectForTest, deferred, uniqueQueue, uniqueServiceName } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli, runToEnd, startCli } from './child.js';

before(() => requireBuiltCli());

/** A plain AMQP connection for declaring queues and publishing, closed when the file ends. */
async function plainChannel() {
  const client = new AMQPClient(AMQP_URL);
  await client.connect();
  after(() => client.close());
  return client.channel();
}

describe('ping', () => {
  test('a queue with consumers: their count, exit 0', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.ping.served');
    await rpc.serve(queue, (request) => request);
    await rpc.serve(queue, (request) => request);
    const result = await runCli(['ping', queue]);
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, `${queue}: 2 consumers, 0 messages waiting\n`);
    assert.equal(result.stderr, '');
  });

  test('one consumer, singular; --url wins over AMQP_URL', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.ping.one');
    await rpc.serve(queue, (request) => request);
    const result = await runCli(['ping', queue, '--url', AMQP_URL], {
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:1',
    });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, `${queue}: 1 consumer, 0 messages waiting\n`);
  });

  test('a queue nothing consumes: the messages waiting, UNAVAILABLE, exit 3', async () => {
    const channel = await plainChannel();
    const queue = uniqueQueue('cli.ping.idle');
    await channel.queueDeclare(queue, { durable: true });
    // Confirmed publishes are in the queue before the ping looks.
    await channel.confirmSelect();
    await channel.basicPublish('', queue, '1');
    await channel.basicPublish('', queue, '2');
    const result = await runCli(['ping', queue]);
    assert.equal(result.code, EXIT.UNAVAILABLE, result.stderr);
    assert.equal(result.stdout, `${queue}: 0 consumers, 2 messages waiting\n`);
    assert.match(
      result.stderr,
      /^UNAVAILABLE: no consumer on ".*": calls would wait until their deadline\n$/,
    );
  });

  test('a queue that does not exist: UNAVAILABLE, exit 3, and nothing is created', async () => {
    const queue = uniqueQueue('cli.ping.missing');
    const result = await runCli(['ping', queue]);
    assert.equal(result.code, EXIT.UNAVAILABLE, result.stderr);
    assert.equal(result.stdout, '');
    // A dotted name is a queue name only: no service look-up.
    assert.equal(
      result.stderr,
      `UNAVAILABLE: no queue "${queue}" in vhost "/": calls would fail at once\n`,
    );
    const again = await runCli(['ping', queue]);
    assert.equal(again.code, EXIT.UNAVAILABLE, 'the passive declare created the queue');
  });

  test('--json: one line of JSON for scripts, in every outcome', async () => {
    const rpc = await connectForTest();
    const served = uniqueQueue('cli.ping.json');
    await rpc.serve(served, (request) => request);
    const ok = await runCli(['ping', served, '--json']);
    assert.equal(ok.code, EXIT.OK, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout), {
      queue: served,
      exists: true,
      consumers: 1,
      messages: 0,
    });
    assert.equal(ok.stdout.split('\n').length, 2);

    const missing = uniqueQueue('cli.ping.json.missing');
    const none = await runCli(['ping', missing, '--json']);
    assert.equal(none.code, EXIT.UNAVAILABLE);
    assert.deepEqual(JSON.parse(none.stdout), {
      queue: missing,
      exists: false,
      consumers: 0,
      messages: 0,
    });
  });

  describe('a service name', () => {
    // No dot: a service name; its queue is the default rpc.<name>.
    const name = uniqueServiceName('cliping');
    const service = defineService(name, { hello: method<null, string>() });

    let rpc: RpcConnection | undefined;
    before(async () => {
      rpc = await connect(AMQP_URL);
      await rpc.serve(service, { hello: () => 'hi' });
    });
    after(async () => {
      await rpc?.close();
      const client = new AMQPClient(AMQP_URL);
      await client.connect();
      const channel = await client.channel();
      await channel.queueDelete(service.queue);
      await client.close();
    });

    test('is looked up as rpc.<name>, and the output says so', async () => {
      assert.equal(service.queue, `rpc.${name}`);
      const result = await runCli(['ping', name]);
      assert.equal(result.code, EXIT.OK, result.stderr);
      assert.equal(
        result.stdout,
        `rpc.${name} (service "${name}"): 1 consumer, 0 messages waiting\n`,
      );
    });

    test('--json names both', async () => {
      const result = await runCli(['ping', name, '--json']);
      assert.equal(result.code, EXIT.OK, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), {
        queue: `rpc.${name}`,
        service: name,
        exists: true,
        consumers: 1,
        messages: 0,
      });
    });

    test('the queue itself by its full name', async () => {
      const result = await runCli(['ping', `rpc.${name}`]);
      assert.equal(result.code, EXIT.OK, result.stderr);
      assert.equal(result.stdout, `rpc.${name}: 1 consumer, 0 messages waiting\n`);
    });

    test('neither a queue nor a service: both names in the message, exit 3', async () => {
      const unknown = `nosuch${randomBytes(4).toString('hex')}`;
      const result = await runCli(['ping', unknown]);
      assert.equal(result.code, EXIT.UNAVAILABLE);
      assert.equal(
        result.stderr,
        `UNAVAILABLE: no queue "${unknown}" (nor "rpc.${unknown}") in vhost "/": calls would fail at once\n`,
      );
    });
  });

  test('SIGINT while waiting for the broker: exit 130', async (t) => {
    const proxy = await startMutingProxy(t);
    const pinging = startCli(['ping', 'anything.at.all', '--url', proxy.url]);
    await proxy.mutedNow;
    pinging.kill('SIGINT');
    const result = await runToEnd(pinging);
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /^CANCELLED: /);
  });

  test("another connection's exclusive queue: FAILED_PRECONDITION, exit 1", async () => {
    const channel = await plainChannel();
    const { name } = await channel.queueDeclare('', { exclusive: true });
    const result = await runCli(['ping', name]);
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.match(result.stderr, /^FAILED_PRECONDITION: /);
  });

  test('no broker: UNAVAILABLE, exit 3, the hint, no password', async () => {
    const result = await runCli(['ping', 'q'], { AMQP_URL: 'amqp://guest:s3cret@127.0.0.1:1' });
    assert.equal(result.code, EXIT.UNAVAILABLE);
    assert.match(result.stderr, /^UNAVAILABLE: /);
    assert.match(result.stderr, /No RabbitMQ answered at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/);
    assert.doesNotMatch(result.stderr, /s3cret/);
    assert.equal(result.stdout, '');
  });

  test('a URL that is not amqp://: INVALID_ARGUMENT, exit 2', async () => {
    const result = await runCli(['ping', 'q', '--url', 'http://x']);
    assert.equal(result.code, EXIT.USAGE);
    assert.match(result.stderr, /^INVALID_ARGUMENT: /);
  });

  test('a broker that stops answering after the login: DEADLINE_EXCEEDED after --timeout-ms, exit 4', async (t) => {
    const proxy = await startMutingProxy(t);
    const started = Date.now();
    const result = await runCli([
      'ping',
      'anything.at.all',
      '--timeout-ms',
      '600',
      '--url',
      proxy.url,
    ]);
    const elapsed = Date.now() - started;
    assert.equal(result.code, EXIT.DEADLINE_EXCEEDED, result.stderr);
    assert.match(result.stderr, /^DEADLINE_EXCEEDED: /);
    assert.ok(proxy.muted(), 'the proxy never saw the queue.declare');
    // Bounded by the timeout (plus process start-up), not by a connection or heartbeat timeout.
    assert.ok(elapsed >= 600 && elapsed < 5_000, `took ${elapsed} ms`);
  });
});

/**
 * A TCP proxy to the broker that forwards everything until the client sends a
 * `queue.declare`, and from then on forwards nothing the client sends: a broker that
 * accepted the login and then stopped answering.
 */
async function startMutingProxy(
  t: TestContext,
): Promise<{ url: string; muted: () => boolean; mutedNow: Promise<void> }> {
  const target = new URL(AMQP_URL);
  const sockets = new Set<Socket>();
  let muted = false;
  const mutedNow = deferred();
  const proxy = createServer((client) => {
    const upstream = connectTcp(Number(target.port || 5672), target.hostname);
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    let pending = Buffer.alloc(0);
    let headerSent = false;
    client.on('data', (chunk: Buffer) => {
      if (muted) return;
      pending = Buffer.concat([pending, chunk]);
      if (!headerSent) {
        if (pending.length < 8) return; // "AMQP" 0 0 9 1
        upstream.write(pending.subarray(0, 8));
        pending = pending.subarray(8);
        headerSent = true;
      }
      // Frames: type (1), channel (2), size (4), payload, 0xCE.
      while (pending.length >= 7) {
        const size = pending.readUInt32BE(3);
        if (pending.length < 8 + size) return;
        const frame = pending.subarray(0, 8 + size);
        pending = pending.subarray(8 + size);
        const isMethod = frame[0] === 1 && size >= 4;
        if (isMethod && frame.readUInt16BE(7) === 50 && frame.readUInt16BE(9) === 10) {
          muted = true; // queue.declare: class 50, method 10
          mutedNow.resolve();
          return;
        }
        upstream.write(frame);
      }
    });
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  const listening = deferred();
  proxy.listen(0, '127.0.0.1', () => listening.resolve());
  await listening.promise;
  t.after(() => {
    proxy.close();
    for (const socket of sockets) socket.destroy();
  });
  const address = proxy.address();
  assert.ok(address !== null && typeof address === 'object');
  const url = new URL(AMQP_URL);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return { url: url.toString(), muted: () => muted, mutedNow: mutedNow.promise };
}
