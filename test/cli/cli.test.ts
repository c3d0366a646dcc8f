import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as connectTcp, createServer, type Socket } from 'node:net';
import { before, describe, test, type TestContext } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { RpcError } from '../../src/index.js';
import { AMQP_URL, connectForTest, deferred, uniqueQueue } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli, runToEnd, startCli } from './child.js';

const UNREACHABLE = 'amqp://guest:s3cret@127.0.0.1:1';

/** Messages ready in `queue`, as a plain AMQP client sees them (a passive declare). */
async function readyMessages(queue: string): Promise<number> {
  const client = new AMQPClient(AMQP_URL);
  await client.connect();
  try {
    const channel = await client.channel();
    return (await channel.queueDeclare(queue, { passive: true })).messageCount;
  } finally {
    await client.close();
  }
}

before(() => requireBuiltCli());

describe('help, version and usage errors', () => {
  for (const args of [['--help'], ['-h'], ['help'], ['help', 'serve']]) {
    test(`rabbit-rpc ${args.join(' ')} prints the usage and exits 0`, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^Usage/m);
    });
  }

  for (const command of ['call', 'broadcast', 'ping', 'serve', 'demo']) {
    for (const flag of ['--help', '-h']) {
      test(`rabbit-rpc ${command} ${flag} prints that command's usage`, async () => {
        const result = await runCli([command, flag]);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`^Usage: rabbit-rpc ${command} `, 'm'));
      });
    }
  }

  test('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const result = await runCli(['--version']);
    assert.equal(result.code, 0);
    assert.equal(result.stdout.trim(), version);
  });

  const usageErrors: Array<[string, string[]]> = [
    ['an unknown command', ['frobnicate']],
    ['an unknown top-level flag', ['--frobnicate']],
    ['an unknown flag of call', ['call', 'q', '1', '--frobnicate']],
    ['call without a request', ['call', 'q']],
    ['call with an extra argument', ['call', 'q', '1', '2']],
    ['--timeout-ms 0', ['call', 'q', '1', '--timeout-ms', '0']],
    ['--timeout-ms abc', ['call', 'q', '1', '--timeout-ms', 'abc']],
    ['--timeout-ms 1.5', ['call', 'q', '1', '--timeout-ms', '1.5']],
    ['--timeout-ms without a value', ['call', 'q', '1', '--timeout-ms']],
    ['a queue name over 255 bytes', ['call', 'q'.repeat(256), '1']],
    ['call --method without a name', ['call', 'q', '1', '--method', '']],
    ['call --method over 255 bytes', ['call', 'q', '1', '--method', 'm'.repeat(256)]],
    ['call --stream --window 0', ['call', 'q', '1', '--stream', '--window', '0']],
    ['call --stream --window over 10000', ['call', 'q', '1', '--stream', '--window', '10001']],
    ['call --window without --stream', ['call', 'q', '1', '--window', '8']],
    ['call --stream with --max', ['call', 'q', '1', '--stream', '--max', '2']],
    ['broadcast without a request', ['broadcast', 'q']],
    ['broadcast with an extra argument', ['broadcast', 'q', '1', '2']],
    ['broadcast with a request that is not JSON', ['broadcast', 'q', '{nope}']],
    ['broadcast --max 0', ['broadcast', 'q', '1', '--max', '0']],
    ['broadcast --max -1', ['broadcast', 'q', '1', '--max=-1']],
    ['broadcast --timeout-ms 0', ['broadcast', 'q', '1', '--timeout-ms', '0']],
    ['broadcast --stream', ['broadcast', 'q', '1', '--stream']],
    ['ping without a name', ['ping']],
    ['ping with an extra argument', ['ping', 'q', 'r']],
    ['ping with an empty name', ['ping', '']],
    ['ping --timeout-ms 0', ['ping', 'q', '--timeout-ms', '0']],
    ['an unknown flag of ping', ['ping', 'q', '--verbose']],
    ['serve without --echo or --module', ['serve', 'q']],
    ['serve with both --echo and --module', ['serve', 'q', '--echo', '--module', 'x.mjs']],
    ['serve --prefetch 0', ['serve', 'q', '--echo', '--prefetch', '0']],
    ['serve --module of a missing file', ['serve', 'q', '--module', 'test/fixtures/nope.mjs']],
    [
      'serve --module without a handler',
      ['serve', 'q', '--module', 'test/fixtures/no-handler.mjs'],
    ],
    ['demo with an argument', ['demo', 'extra']],
  ];
  for (const [name, args] of usageErrors) {
    test(`${name} is a usage error: exit 2, nothing tried`, async () => {
      // An unreachable broker proves nothing was attempted: that would be UNAVAILABLE (3).
      const result = await runCli(args, { AMQP_URL: UNREACHABLE });
      assert.equal(result.code, EXIT.USAGE, result.stderr);
      assert.match(result.stderr, /^rabbit-rpc: /);
      assert.match(result.stderr, /--help' for usage/);
      assert.equal(result.stdout, '');
    });
  }
});

describe('call', () => {
  test('prints the reply as one line of JSON and exits 0', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.call');
    await rpc.serve(queue, (request) => ({ got: request, n: 1 }));
    const result = await runCli(['call', queue, '{"hello": ["world", 2]}', '--url', AMQP_URL]);
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '{"got":{"hello":["world",2]},"n":1}\n');
    assert.equal(result.stderr, '');
  });

  test('takes the broker URL from AMQP_URL, and --url wins over it', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.env');
    await rpc.serve(queue, (request) => request);
    const fromEnv = await runCli(['call', queue, '"env"'], { AMQP_URL });
    assert.equal(fromEnv.code, EXIT.OK, fromEnv.stderr);
    assert.equal(fromEnv.stdout, '"env"\n');
    const fromFlag = await runCli(['call', queue, '"flag"', '--url', AMQP_URL], {
      AMQP_URL: UNREACHABLE,
    });
    assert.equal(fromFlag.code, EXIT.OK, fromFlag.stderr);
    assert.equal(fromFlag.stdout, '"flag"\n');
  });

  test('a queue nobody serves: UNAVAILABLE, exit 3', async () => {
    const result = await runCli(['call', uniqueQueue('cli.missing'), '"hi"', '--url', AMQP_URL]);
    assert.equal(result.code, EXIT.UNAVAILABLE);
    assert.match(result.stderr, /^UNAVAILABLE: /);
    assert.equal(result.stdout, '');
  });

  test('no reply in time: DEADLINE_EXCEEDED, exit 4, after about --timeout-ms', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.slow');
    // Replies only once the CLI has given up.
    const release = deferred<string>();
    await rpc.serve(queue, () => release.promise);
    const started = Date.now();
    const result = await runCli(['call', queue, '1', '--timeout-ms', '300', '--url', AMQP_URL]);
    release.resolve('late');
    assert.equal(result.code, EXIT.DEADLINE_EXCEEDED, result.stderr);
    assert.match(result.stderr, /^DEADLINE_EXCEEDED: /);
    assert.ok(Date.now() - started >= 300);
  });

  test("a handler's error: its code and details on stderr, exit 1", async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.err');
    await rpc.serve(queue, () => {
      throw new RpcError('NOT_FOUND', 'no such user', { details: { id: 7 } });
    });
    const result = await runCli(['call', queue, '{"id":7}', '--url', AMQP_URL]);
    assert.equal(result.code, EXIT.ERROR);
    assert.match(result.stderr, /^NOT_FOUND: no such user\ndetails: \{"id":7\}\n$/);
    assert.equal(result.stdout, '');
  });

  test('bad JSON: exit 2 and nothing is published', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.badjson');
    const seen: unknown[] = [];
    await rpc.serve(queue, (request) => {
      seen.push(request);
      return request;
    });
    const bad = await runCli(['call', queue, "{'single': 'quotes'}", '--url', AMQP_URL]);
    assert.equal(bad.code, EXIT.USAGE);
    assert.match(bad.stderr, /not valid JSON/);
    // The queue is FIFO: had the bad call published anything, it would arrive before this.
    const good = await runCli(['call', queue, '"after"', '--url', AMQP_URL]);
    assert.equal(good.code, EXIT.OK, good.stderr);
    assert.deepEqual(seen, ['after']);
  });

  test('a JSON value starting with "-" goes after --', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.dash');
    await rpc.serve(queue, (request) => request);
    const result = await runCli(['call', '--url', AMQP_URL, queue, '--', '-1.5']);
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '-1.5\n');
  });

  test('SIGINT while waiting for the reply: CANCELLED, exit 130', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.sigint');
    const received = deferred();
    const release = deferred<string>();
    await rpc.serve(queue, () => {
      received.resolve();
      return release.promise;
    });
    const caller = startCli(['call', queue, '1', '--url', AMQP_URL]);
    await received.promise;
    caller.kill('SIGINT');
    const result = await runToEnd(caller);
    release.resolve('too late');
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /^CANCELLED: /);
  });

  test('a URL that is not amqp:// or amqps://: INVALID_ARGUMENT, exit 2', async () => {
    const result = await runCli(['call', 'q', '1', '--url', 'http://x']);
    assert.equal(result.code, EXIT.USAGE);
    assert.match(result.stderr, /^INVALID_ARGUMENT: /);
  });

  test('no broker: UNAVAILABLE, exit 3, how to start one, and no password', async () => {
    const result = await runCli(['call', 'q', '1'], { AMQP_URL: UNREACHABLE });
    assert.equal(result.code, EXIT.UNAVAILABLE);
    assert.match(result.stderr, /^UNAVAILABLE: /);
    assert.match(result.stderr, /No RabbitMQ answered at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1/);
    assert.match(
      result.stderr,
      /sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached/,
    );
    assert.doesNotMatch(result.stderr, /s3cret/);
  });
});

describe('serve', () => {
  test('--echo answers concurrent calls, then drains and exits 0 on SIGTERM', async () => {
    const queue = uniqueQueue('cli.echo');
    const server = startCli(['serve', queue, '--echo', '--url', AMQP_URL]);
    const ready = await server.waitFor(/^serving .*$/m, 'stderr');
    assert.match(
      ready,
      new RegExp(`^serving ${queue.replaceAll('.', '\\.')} on amqp://guest:\\*\\*\\*@`),
    );
    const rpc = await connectForTest();
    const requests = [1, 'two', { three: [3] }, null, true];
    const replies = await Promise.all(requests.map((request) => rpc.call(queue, request)));
    assert.deepEqual(replies, requests);
    server.kill('SIGTERM');
    const result = await runToEnd(server);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /stopped\n$/);
  });

  test('a call in progress still gets its reply when SIGTERM arrives (drain)', async () => {
    const queue = uniqueQueue('cli.drain');
    const server = startCli(['serve', queue, '--module', 'test/fixtures/slow-handler.mjs']);
    await server.waitFor(/^serving /m, 'stderr');
    const rpc = await connectForTest();
    const reply = rpc.call(queue, { sleepMs: 400 });
    await server.waitFor(/^handling sleepMs 400/m, 'stderr');
    const signalledAt = Date.now();
    server.kill('SIGTERM');
    assert.deepEqual(await reply, { slept: 400 });
    const result = await runToEnd(server);
    const exitedAfterMs = Date.now() - signalledAt;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /received SIGTERM: draining\nstopped\n$/);
    // Exits once the handler is done, far within the drain timeout (30 s)...
    assert.ok(exitedAfterMs < 5_000, `exited ${exitedAfterMs} ms after SIGTERM`);
    // ...and acked what it answered: nothing goes back to the queue to run again.
    assert.equal(await readyMessages(queue), 0, 'the answered request was requeued');
  });

  test('a second signal while draining exits 130 at once', async () => {
    const queue = uniqueQueue('cli.twice');
    const server = startCli(['serve', queue, '--module', 'test/fixtures/slow-handler.mjs']);
    await server.waitFor(/^serving /m, 'stderr');
    const rpc = await connectForTest();
    rpc.call(queue, { sleepMs: 60_000 }, { timeoutMs: 60_000 }).catch(() => undefined);
    await server.waitFor(/^handling sleepMs/m, 'stderr');
    server.kill('SIGTERM');
    await server.waitFor(/draining/, 'stderr');
    server.kill('SIGTERM');
    const result = await runToEnd(server);
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stderr, /exiting without draining/);
  });

  test('SIGINT stops it gracefully too', async () => {
    const server = startCli(['serve', uniqueQueue('cli.int'), '--echo']);
    await server.waitFor(/^serving /m, 'stderr');
    server.kill('SIGINT');
    const result = await runToEnd(server);
    assert.equal(result.code, 0, result.stderr);
  });

  test('--module: a named export "handler" (the seed handler)', async () => {
    const queue = uniqueQueue('cli.module');
    const server = startCli(['serve', queue, '--module', './test/fixtures/processed-handler.mjs']);
    await server.waitFor(/^serving /m, 'stderr');
    const result = await runCli(['call', queue, '"Hello World"']);
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '"Processed: Hello World"\n');
    server.kill('SIGTERM');
    assert.equal((await runToEnd(server)).code, 0);
  });

  test("--module: an RpcError imported from 'rabbit-rpc' keeps its code", async () => {
    const queue = uniqueQueue('cli.modfail');
    const server = startCli([
      'serve',
      queue,
      '--module',
      'test/fixtures/slow-handler.mjs',
      '--prefetch',
      '2',
    ]);
    await server.waitFor(/^serving /m, 'stderr');
    const result = await runCli(['call', queue, '{"fail":"PERMISSION_DENIED"}']);
    assert.equal(result.code, EXIT.ERROR);
    assert.match(
      result.stderr,
      /^PERMISSION_DENIED: failing as asked\ndetails: \{"asked":"PERMISSION_DENIED"\}/,
    );
    server.kill('SIGTERM');
    assert.equal((await runToEnd(server)).code, 0);
  });

  test('no broker: UNAVAILABLE, exit 3, with the hint', async () => {
    const result = await runCli(['serve', 'q', '--echo', '--url', UNREACHABLE]);
    assert.equal(result.code, EXIT.UNAVAILABLE);
    assert.match(result.stderr, /^UNAVAILABLE: [^]*No RabbitMQ answered at/);
    assert.doesNotMatch(result.stderr, /s3cret/);
  });

  /** A TCP proxy of our own in front of the broker: cutting it cuts only our connections. */
  async function startProxy(t: TestContext): Promise<{ url: string; cut: () => void }> {
    const broker = new URL(AMQP_URL);
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      const upstream = connectTcp(Number(broker.port || 5672), broker.hostname);
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    const cut = (): void => {
      for (const socket of sockets) socket.destroy();
    };
    const listening = deferred();
    proxy.listen(0, '127.0.0.1', () => listening.resolve());
    await listening.promise;
    t.after(() => {
      proxy.close();
      cut();
    });
    const address = proxy.address();
    assert.ok(address !== null && typeof address === 'object');
    const url = new URL(AMQP_URL);
    url.hostname = '127.0.0.1';
    url.port = String(address.port);
    return { url: url.toString(), cut };
  }

  test('a lost connection: reconnects, says so, and serves again', async (t) => {
    const proxy = await startProxy(t);
    const queue = uniqueQueue('cli.reconnect');
    const server = startCli(['serve', queue, '--echo', '--url', proxy.url]);
    await server.waitFor(/^serving /m, 'stderr');
    proxy.cut();
    await server.waitFor(
      /^lost the connection to amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\/?: reconnecting$/m,
      'stderr',
    );
    await server.waitFor(/^reconnected to /m, 'stderr');
    const rpc = await connectForTest();
    assert.equal(await rpc.call(queue, 'after the loss', { timeoutMs: 5_000 }), 'after the loss');
    server.kill('SIGTERM');
    const result = await runToEnd(server);
    assert.equal(result.code, 0, result.stderr);
  });

  test('--no-reconnect: a lost connection is reported and exits 3', async (t) => {
    const proxy = await startProxy(t);
    const server = startCli([
      'serve',
      uniqueQueue('cli.lost'),
      '--echo',
      '--no-reconnect',
      '--url',
      proxy.url,
    ]);
    await server.waitFor(/^serving /m, 'stderr');
    proxy.cut();
    const result = await runToEnd(server);
    assert.equal(result.code, EXIT.UNAVAILABLE, result.stderr);
    assert.match(result.stderr, /^UNAVAILABLE: /m);
    assert.doesNotMatch(result.stderr, /reconnecting/);
  });
});

describe('demo', () => {
  test('runs its calls, prints latencies and exits 0', async () => {
    const result = await runCli(['demo', '--url', AMQP_URL]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, /call "Hello World" → "Processed: Hello World" \(\d+\.\d ms\)/);
    assert.match(result.stdout, /→ INVALID_ARGUMENT: cannot divide by zero \(\d+\.\d ms\)/);
    assert.match(result.stdout, /→ DEADLINE_EXCEEDED: .* \(\d+\.\d ms\)/);
    assert.equal(result.stdout.match(/\(\d+\.\d ms\)/g)?.length, 10);
    assert.doesNotMatch(result.stdout, /unexpected/);
    assert.doesNotMatch(result.stdout, /guest:guest/);
  });
});
