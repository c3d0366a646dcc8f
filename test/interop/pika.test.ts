/**
 * rabbit-rpc against the seed's own Python pika code (test/fixtures/seed_*.py), both ways:
 * the seed's client calling `rabbit-rpc serve`, and `rabbit-rpc call` / `rpc.call` calling
 * the seed's server. Runs Debian's /usr/bin/python3, which has pika.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, test } from 'node:test';
import { RpcError, type RpcConnection } from '../../src/index.js';
import { connectForTest, refusesTransientQueues, uniqueQueue } from '../helpers.js';
import { PYTHON, requireBuiltCli, runCli, runToEnd, startCli, startPython } from '../cli/child.js';

before(() => {
  requireBuiltCli();
  try {
    execFileSync(PYTHON, ['-c', 'import pika'], { stdio: 'pipe' });
  } catch {
    throw new Error(
      `${PYTHON} cannot import pika: install it with "sudo apt-get install -y python3-pika"`,
    );
  }
});

/** Runs the seed's client once against `queue` and returns what it printed. */
async function seedClient(queue: string, request: string): Promise<string> {
  const result = await runToEnd(startPython('seed_client.py', [queue, request]), 20_000);
  assert.equal(result.code, 0, `seed_client.py failed:\n${result.stderr}`);
  return result.stdout;
}

/**
 * Starts the seed's server on `queue`. pika prints its line after declaring the queue and
 * before it consumes; the first call below retries briefly in case the queue is not there yet.
 */
async function seedServer(queue: string): Promise<void> {
  // RabbitMQ 4.3 refuses the seed's non-durable queue: the fixture's one-line change then.
  const durable = (await refusesTransientQueues()) ? ['--durable'] : [];
  const server = startPython('seed_server.py', [queue, ...durable]);
  await server.waitFor(/^Server waiting for requests\.\.\.$/m, 'stdout');
}

/** The first call to a freshly started server: retries UNAVAILABLE (no queue yet) a few times. */
async function firstCall(rpc: RpcConnection, queue: string, request: unknown): Promise<unknown> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await rpc.call(queue, request, { timeoutMs: 5_000 });
    } catch (error) {
      if (!(error instanceof RpcError) || error.code !== 'UNAVAILABLE' || attempt === 5)
        throw error;
      await sleep(50 * attempt);
    }
  }
}

describe("the seed's pika client calling rabbit-rpc serve", () => {
  test('serve --echo: the reply is the request', async () => {
    const queue = uniqueQueue('interop.echo');
    const server = startCli(['serve', queue, '--echo']);
    await server.waitFor(/^serving /m, 'stderr');
    assert.equal(await seedClient(queue, 'Hello World'), 'Hello World\n');
    server.kill('SIGTERM');
    assert.equal((await runToEnd(server)).code, 0);
  });

  test("serve --module with the seed's handler: Processed: Hello World", async () => {
    const queue = uniqueQueue('interop.module');
    const server = startCli(['serve', queue, '--module', 'test/fixtures/processed-handler.mjs']);
    await server.waitFor(/^serving /m, 'stderr');
    assert.equal(await seedClient(queue, 'Hello World'), 'Processed: Hello World\n');
    assert.equal(await seedClient(queue, 'again'), 'Processed: again\n');
    server.kill('SIGTERM');
    assert.equal((await runToEnd(server)).code, 0);
  });
});

describe("rabbit-rpc calling the seed's pika server", () => {
  test('rabbit-rpc call prints "Processed: Hello World"', async () => {
    const queue = uniqueQueue('interop.seedserver');
    await seedServer(queue);
    const rpc = await connectForTest();
    // Makes sure the seed's queue exists before the CLI, which does not retry, calls it.
    assert.equal(await firstCall(rpc, queue, 'warm-up'), 'Processed: warm-up');
    const result = await runCli(['call', queue, '"Hello World"']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '"Processed: Hello World"\n');
  });

  test('rpc.call with many calls in flight: each reply matches its request', async () => {
    const queue = uniqueQueue('interop.inflight');
    await seedServer(queue);
    const rpc = await connectForTest();
    assert.equal(await firstCall(rpc, queue, 'first'), 'Processed: first');
    const requests = Array.from({ length: 20 }, (_, i) => `request ${i}`);
    const replies = await Promise.all(
      requests.map((request) => rpc.call(queue, request, { timeoutMs: 10_000 })),
    );
    assert.deepEqual(
      replies,
      requests.map((request) => `Processed: ${request}`),
    );
    assert.equal(rpc.stats().pending, 0);
  });

  test("the seed's unchanged server: rabbit-rpc serves its non-durable queue beside it; RabbitMQ 4.3 refuses it", async () => {
    const queue = uniqueQueue('interop.unchanged');
    if (await refusesTransientQueues()) {
      // The seed's queue_declare(queue=...) is a transient non-exclusive queue: 541, exit.
      const result = await runToEnd(startPython('seed_server.py', [queue]), 20_000);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /transient_nonexcl_queues/);
      return;
    }
    const server = startPython('seed_server.py', [queue]);
    await server.waitFor(/^Server waiting for requests\.\.\.$/m, 'stdout');
    const warnings: string[] = [];
    const rpc = await connectForTest({
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: (_context, message) => warnings.push(message),
        error: () => undefined,
      },
    });
    // rabbit-rpc's default is a durable queue: it takes the seed's as it is, and says so.
    await rpc.serve(queue, (request: string) => `Processed: ${request}`);
    assert.ok(
      warnings.some((warning) => warning.includes(`"${queue}"`)),
      warnings.join('\n'),
    );
    const requests = Array.from({ length: 10 }, (_, i) => `request ${i}`);
    const replies = await Promise.all(requests.map((request) => rpc.call(queue, request)));
    assert.deepEqual(
      replies,
      requests.map((request) => `Processed: ${request}`),
    );
  });
});
