// `rabbit-rpc bench`, against the real broker at AMQP_URL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { RpcError } from '../../src/index.js';
import { FaultProxy } from '../../src/testing/index.js';
import { AMQP_URL, connectForTest, deferred, uniqueQueue } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli, runToEnd, startCli } from './child.js';

const UNREACHABLE = 'amqp://guest:s3cret@127.0.0.1:1';

before(() => requireBuiltCli());

/** The fields of `bench --json` the tests read. */
interface BenchJson {
  queue: string;
  echo: boolean;
  concurrency: number;
  requestBytes: number;
  warmup: { ms: number; calls: number; failed: number; errors: Record<string, number> };
  durationMs: number;
  calls: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  callsPerSec: number;
  latencyMs: Record<'p50' | 'p90' | 'p99' | 'p999' | 'max', number | null>;
  clientCpuUsPerCall: number | null;
  clientRssMb: number;
  clientPeakRssMb: number;
  complete: boolean;
  stoppedBy?: string;
}

function parseResult(stdout: string): BenchJson {
  const lines = stdout.split('\n');
  assert.equal(lines.length, 2, `not one line of JSON:\n${stdout}`);
  return JSON.parse(lines[0] ?? '') as BenchJson;
}

function latencies(result: BenchJson): number[] {
  const { p50, p90, p99, p999, max } = result.latencyMs;
  return [p50, p90, p99, p999, max].map((value) => {
    assert.equal(typeof value, 'number', 'a latency is missing');
    return value ?? NaN;
  });
}

describe('bench', () => {
  test('--calls --json: every call counted, none failed, ordered percentiles, exit 0', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.bench.ok');
    const seen: unknown[] = [];
    await rpc.serve(queue, (request) => {
      seen.push(request);
      return { got: request };
    });
    const run = await runCli([
      'bench',
      queue,
      '{"x":1}',
      '--calls',
      '200',
      '--concurrency',
      '8',
      '--json',
    ]);
    assert.equal(run.code, EXIT.OK, run.stderr);
    assert.equal(run.stderr, '');
    const result = parseResult(run.stdout);
    assert.equal(result.queue, queue);
    assert.equal(result.echo, false);
    assert.equal(result.concurrency, 8);
    assert.equal(result.calls, 200);
    assert.equal(result.ok, 200);
    assert.equal(result.failed, 0);
    assert.deepEqual(result.errors, {});
    assert.deepEqual(result.warmup.errors, {});
    assert.equal(result.requestBytes, '{"x":1}'.length);
    assert.equal(result.complete, true);
    const [p50 = NaN, p90 = NaN, p99 = NaN, p999 = NaN, max = NaN] = latencies(result);
    assert.ok(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max, `${p50}…${max}`);
    assert.ok(result.callsPerSec > 0);
    assert.ok(result.durationMs > 0);
    assert.ok((result.clientCpuUsPerCall ?? 0) > 0);
    assert.ok(result.clientRssMb > 0 && result.clientPeakRssMb >= result.clientRssMb * 0.5);
    // The warm-up (the first call among them) and the 200 measured calls, all as given.
    assert.equal(seen.length, result.warmup.calls + 200);
    assert.ok(seen.every((request) => JSON.stringify(request) === '{"x":1}'));
  });

  test('keeps --concurrency calls in flight at once', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.bench.concurrency');
    // The 8 calls after the first are held until all 8 are in: fewer in flight never finish.
    let arrived = 0;
    const allIn = deferred();
    await rpc.serve(
      queue,
      async (request) => {
        arrived++;
        if (arrived === 9) allIn.resolve();
        if (arrived >= 2 && arrived <= 9) await allIn.promise;
        return request;
      },
      { prefetch: 20 },
    );
    const run = await runCli([
      'bench',
      queue,
      '--calls',
      '40',
      '-c',
      '8',
      '--warmup-ms',
      '0',
      '--timeout-ms',
      '10000',
      '--json',
    ]);
    assert.equal(run.code, EXIT.OK, run.stderr);
    assert.equal(parseResult(run.stdout).ok, 40);
  });

  test('a handler that fails some requests: errors counted by code, exit 1', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.bench.errors');
    // Arrival n (the first call is 1): every 3rd is INVALID_ARGUMENT, other 5ths a plain Error.
    let arrived = 0;
    await rpc.serve(queue, (request) => {
      arrived++;
      if (arrived % 3 === 0) throw new RpcError('INVALID_ARGUMENT', `bad request ${arrived}`);
      if (arrived % 5 === 0) throw new Error('plain failure');
      return request;
    });
    const args = ['bench', queue, '1', '--calls', '60', '-c', '4', '--warmup-ms', '0'];
    const run = await runCli([...args, '--json']);
    assert.equal(run.code, EXIT.ERROR, run.stderr);
    const result = parseResult(run.stdout);
    // Arrivals 2 to 61: multiples of 3: 20; multiples of 5 but not of 3: 8.
    assert.equal(result.calls, 60);
    assert.deepEqual(result.errors, { INVALID_ARGUMENT: 20, UNKNOWN: 8 });
    assert.equal(result.failed, 28);
    assert.equal(result.ok, 32);
    // The first error of each code, on stderr.
    assert.match(run.stderr, /^INVALID_ARGUMENT: bad request \d+ \(the first of 20\)$/m);
    assert.match(run.stderr, /^UNKNOWN: plain failure \(the first of 8\)$/m);

    // The same in the table.
    arrived = 0;
    const table = await runCli(args);
    assert.equal(table.code, EXIT.ERROR, table.stderr);
    assert.match(table.stdout, /^errors +28 failed: INVALID_ARGUMENT 20, UNKNOWN 8$/m);
  });

  test('the table: every heading, with --echo (its own echo server, no setup)', async () => {
    const run = await runCli(['bench', '--echo', '"hi"', '--calls', '100', '--warmup-ms', '0']);
    assert.equal(run.code, EXIT.OK, run.stderr);
    assert.equal(run.stderr, '');
    for (const heading of [
      /^queue +rabbit-rpc\.bench\.[0-9a-f]{8} \(echo server in this process\)$/m,
      /^in flight +16$/m,
      /^request +4 bytes of JSON$/m,
      /^warm-up +\d+\.\d\d s, 1 call$/m,
      /^duration +\d+\.\d\d s$/m,
      /^calls +100$/m,
      /^calls\/s +[\d,]+$/m,
      /^errors +none$/m,
      /^latency ms +p50 +p90 +p99 +p99\.9 +max$/m,
      /^ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$/m,
      /^client CPU +[\d.]+ µs per call$/m,
      /^client RSS +[\d.]+ MB, peak [\d.]+ MB$/m,
    ]) {
      assert.match(run.stdout, heading);
    }
  });

  test('any server: a plain AMQP one, --payload-bytes, --method in the AMQP type', async () => {
    // Replies as the seed's pika server does: no content type, no headers.
    const client = new AMQPClient(AMQP_URL);
    await client.connect();
    after(() => client.close());
    const channel = await client.channel();
    const queue = uniqueQueue('cli.bench.plain');
    await channel.queueDeclare(queue, { durable: true });
    const sizes = new Set<number>();
    const types = new Set<string | undefined>();
    await channel.basicConsume(queue, { noAck: true }, (message) => {
      sizes.add(message.bodySize);
      types.add(message.properties.type);
      void channel.basicPublish('', message.properties.replyTo ?? '', '"Processed"', {
        correlationId: message.properties.correlationId ?? '',
      });
    });
    const run = await runCli([
      'bench',
      queue,
      '--payload-bytes',
      '1000',
      '--method',
      'add',
      '--calls',
      '50',
      '--warmup-ms',
      '0',
      '--json',
    ]);
    assert.equal(run.code, EXIT.OK, run.stderr);
    const result = parseResult(run.stdout);
    assert.equal(result.ok, 50);
    assert.equal(result.requestBytes, 1000);
    assert.deepEqual([...sizes], [1000]);
    assert.deepEqual([...types], ['add']);
  });

  test('a queue that does not exist: UNAVAILABLE at once, exit 3, nothing measured', async () => {
    const started = Date.now();
    const run = await runCli(['bench', uniqueQueue('cli.bench.missing'), '--duration-ms', '60000']);
    assert.equal(run.code, EXIT.UNAVAILABLE, run.stderr);
    assert.match(run.stderr, /^UNAVAILABLE: /);
    assert.match(run.stderr, /nothing was measured/);
    assert.equal(run.stdout, '');
    // Not the duration, nor the 30 s call timeout: the broker returns the request at once.
    assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
  });

  test('a queue nobody answers: DEADLINE_EXCEEDED after --timeout-ms, exit 4', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.bench.silent');
    // Replies only once the CLI has given up.
    const release = deferred<string>();
    await rpc.serve(queue, () => release.promise);
    const run = await runCli(['bench', queue, '--timeout-ms', '300', '--duration-ms', '60000']);
    release.resolve('late');
    assert.equal(run.code, EXIT.DEADLINE_EXCEEDED, run.stderr);
    assert.match(run.stderr, /^DEADLINE_EXCEEDED: /);
    assert.match(run.stderr, /nothing was measured/);
    assert.equal(run.stdout, '');
  });

  test('no broker: UNAVAILABLE, exit 3, and no password', async () => {
    const run = await runCli(['bench', 'q'], { AMQP_URL: UNREACHABLE });
    assert.equal(run.code, EXIT.UNAVAILABLE);
    assert.match(run.stderr, /^UNAVAILABLE: /);
    assert.doesNotMatch(run.stderr, /s3cret/);
  });

  test('SIGINT while measuring: the figures so far, exit 130', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.bench.sigint');
    let arrived = 0;
    const measuring = deferred();
    await rpc.serve(queue, (request) => {
      if (++arrived === 50) measuring.resolve();
      return request;
    });
    const bench = startCli(['bench', queue, '--duration-ms', '60000', '--warmup-ms', '0']);
    await measuring.promise;
    bench.kill('SIGINT');
    const run = await runToEnd(bench);
    assert.equal(run.code, EXIT.INTERRUPTED, run.stderr);
    assert.match(run.stdout, /^stopped +early: interrupted$/m);
    assert.match(run.stdout, /^calls +[\d,]+$/m);
    assert.match(run.stderr, /^interrupted$/m);
  });

  test('the connection lost while measuring: the figures so far, UNAVAILABLE, exit 3', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.bench.lost');
    await using proxy = await FaultProxy.start(AMQP_URL);
    let arrived = 0;
    const measuring = deferred();
    await rpc.serve(queue, (request) => {
      if (++arrived === 50) measuring.resolve();
      return request;
    });
    const bench = startCli([
      'bench',
      queue,
      '--duration-ms',
      '60000',
      '--warmup-ms',
      '0',
      '--json',
      '--url',
      proxy.url(AMQP_URL),
    ]);
    await measuring.promise;
    proxy.resetAll();
    const run = await runToEnd(bench);
    assert.equal(run.code, EXIT.UNAVAILABLE, run.stderr);
    const result = parseResult(run.stdout);
    assert.equal(result.complete, false);
    assert.equal(result.stoppedBy, 'connection lost');
    assert.ok(result.ok >= 1);
    assert.match(run.stderr, /^UNAVAILABLE: /m);
  });

  test('--help prints the usage of bench', async () => {
    const run = await runCli(['bench', '--help']);
    assert.equal(run.code, EXIT.OK, run.stderr);
    assert.match(run.stdout, /^Usage: rabbit-rpc bench /m);
    const top = await runCli(['--help']);
    assert.match(top.stdout, /^ {2}bench /m);
  });

  const usageErrors: Array<[string, string[]]> = [
    ['no queue', ['bench']],
    ['an extra argument', ['bench', 'q', '1', '2']],
    ['a request that is not JSON', ['bench', 'q', '{nope}']],
    ['--echo with a queue and a request', ['bench', '--echo', 'q', '1']],
    ['both --calls and --duration-ms', ['bench', 'q', '--calls', '5', '--duration-ms', '5']],
    ['--calls 0', ['bench', 'q', '--calls', '0']],
    ['--concurrency 0', ['bench', 'q', '--concurrency', '0']],
    ['--concurrency abc', ['bench', 'q', '-c', 'abc']],
    ['--duration-ms 1.5', ['bench', 'q', '--duration-ms', '1.5']],
    ['--warmup-ms without a value', ['bench', 'q', '--warmup-ms']],
    ['--timeout-ms 0', ['bench', 'q', '--timeout-ms', '0']],
    ['--payload-bytes 1', ['bench', 'q', '--payload-bytes', '1']],
    ['--payload-bytes and a request', ['bench', 'q', '1', '--payload-bytes', '10']],
    ['--method without a name', ['bench', 'q', '--method', '']],
    ['an unknown flag', ['bench', 'q', '--frobnicate']],
  ];
  for (const [name, args] of usageErrors) {
    test(`${name} is a usage error: exit 2, nothing tried`, async () => {
      // An unreachable broker proves nothing was attempted: that would be UNAVAILABLE (3).
      const run = await runCli(args, { AMQP_URL: UNREACHABLE });
      assert.equal(run.code, EXIT.USAGE, run.stderr);
      assert.match(run.stderr, /^rabbit-rpc: /);
      assert.match(run.stderr, /'rabbit-rpc bench --help' for usage/);
      assert.equal(run.stdout, '');
    });
  }
});
