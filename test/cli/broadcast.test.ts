// `rabbit-rpc broadcast`, against the real broker at AMQP_URL: the server instances are
// connections of this test process.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { RpcError, type RpcConnection } from '../../src/index.js';
import { AMQP_URL, connectForTest, deferred, uniqueQueue } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli, runToEnd, startCli } from './child.js';

before(() => requireBuiltCli());

/** `count` server instances of a fresh queue, each on its own connection. */
async function instances(count: number, prefix: string): Promise<[string, RpcConnection[]]> {
  const queue = uniqueQueue(prefix);
  const connections = await Promise.all(Array.from({ length: count }, () => connectForTest()));
  return [queue, connections];
}

/** The text output's lines, split on the two-space separators. */
function rows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('  '));
}

interface JsonReply {
  instance: string;
  ok: boolean;
  reply?: unknown;
  code?: string;
  message?: string;
  details?: unknown;
}

describe('broadcast', () => {
  test('every instance answers: one line each, with distinct instances; exit 0', async () => {
    const [queue, servers] = await instances(2, 'cli.bcast');
    await Promise.all(servers.map((rpc, n) => rpc.serve(queue, (request) => ({ n, request }))));
    const result = await runCli(['broadcast', queue, '"status?"', '--timeout-ms', '1000'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stderr, '');
    const printed = rows(result.stdout);
    assert.equal(printed.length, 2, result.stdout);
    for (const [instance, status, reply, ...rest] of printed) {
      assert.match(instance ?? '', /^amq\.gen-/);
      assert.equal(status, 'ok');
      assert.deepEqual(rest, []);
      assert.equal((JSON.parse(reply ?? '') as { request: unknown }).request, 'status?');
    }
    assert.equal(new Set(printed.map(([instance]) => instance)).size, 2);
    assert.deepEqual(
      printed.map(([, , reply]) => (JSON.parse(reply ?? '') as { n: number }).n).sort(),
      [0, 1],
    );
  });

  test('--json: one array with an entry per instance', async () => {
    const [queue, servers] = await instances(2, 'cli.bcast.json');
    await Promise.all(servers.map((rpc) => rpc.serve(queue, () => 'up')));
    // --max 2 ends it as soon as both answered, long before the timeout.
    const result = await runCli(
      ['broadcast', queue, 'null', '--json', '--max', '2', '--timeout-ms', '20000'],
      { AMQP_URL },
    );
    assert.equal(result.code, EXIT.OK, result.stderr);
    const replies = JSON.parse(result.stdout) as JsonReply[];
    assert.equal(result.stdout.trim().split('\n').length, 1);
    assert.equal(replies.length, 2);
    assert.deepEqual(
      replies.map(({ ok, reply }) => ({ ok, reply })),
      [
        { ok: true, reply: 'up' },
        { ok: true, reply: 'up' },
      ],
    );
    assert.equal(new Set(replies.map((reply) => reply.instance)).size, 2);
  });

  test('--max 1: only the first instance to answer', async () => {
    const [queue, servers] = await instances(2, 'cli.bcast.max');
    await Promise.all(servers.map((rpc) => rpc.serve(queue, () => 'up')));
    const result = await runCli(
      ['broadcast', queue, 'null', '--max', '1', '--timeout-ms', '20000'],
      {
        AMQP_URL,
      },
    );
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(rows(result.stdout).length, 1);
  });

  test("an instance's handler throws: its code and message on its line; exit 1", async () => {
    const [queue, [good, bad]] = await instances(2, 'cli.bcast.err');
    assert.ok(good && bad);
    await good.serve(queue, () => 'fine');
    await bad.serve(queue, () => {
      throw new RpcError('INTERNAL', 'disk full', { details: { disk: '/var' } });
    });
    const text = await runCli(['broadcast', queue, 'null', '--max', '2', '--timeout-ms', '20000'], {
      AMQP_URL,
    });
    assert.equal(text.code, EXIT.ERROR, text.stderr);
    const statuses = rows(text.stdout).map(([, ...rest]) => rest.join('  '));
    assert.deepEqual(statuses.sort(), ['INTERNAL  disk full', 'ok  "fine"']);

    const json = await runCli(
      ['broadcast', queue, 'null', '--json', '--max', '2', '--timeout-ms', '20000'],
      { AMQP_URL },
    );
    assert.equal(json.code, EXIT.ERROR, json.stderr);
    const failed = (JSON.parse(json.stdout) as JsonReply[]).filter((reply) => !reply.ok);
    assert.equal(failed.length, 1);
    assert.deepEqual(
      { ...failed[0], instance: undefined },
      {
        instance: undefined,
        ok: false,
        code: 'INTERNAL',
        message: 'disk full',
        details: { disk: '/var' },
      },
    );
  });

  test('no instance serves the queue: UNAVAILABLE on stderr, exit 3', async () => {
    // Some instance of another queue, so that the control exchange exists.
    const [served, [rpc]] = await instances(1, 'cli.bcast.other');
    await rpc?.serve(served, () => 'up');
    const queue = uniqueQueue('cli.bcast.none');
    const result = await runCli(['broadcast', queue, 'null', '--timeout-ms', '700'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.UNAVAILABLE, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(
      result.stderr,
      `UNAVAILABLE: no server instance of ${queue} answered within 700 ms\n`,
    );
    const json = await runCli(['broadcast', queue, 'null', '--json'], { AMQP_URL });
    assert.equal(json.code, EXIT.UNAVAILABLE, json.stderr);
    assert.equal(json.stdout, '[]\n');
    assert.match(json.stderr, /answered within 2000 ms\n$/);
  });

  test('an instance that does not answer in time is missing: none answered, exit 3', async () => {
    const [queue, [rpc]] = await instances(1, 'cli.bcast.slow');
    const release = deferred<string>();
    await rpc?.serve(queue, () => release.promise);
    const result = await runCli(['broadcast', queue, 'null', '--timeout-ms', '300'], { AMQP_URL });
    release.resolve('late');
    assert.equal(result.code, EXIT.UNAVAILABLE, result.stderr);
    assert.match(result.stderr, /^UNAVAILABLE: no server instance of .* within 300 ms\n$/);
  });

  test('SIGINT while collecting: CANCELLED, exit 130', async () => {
    const [queue, [rpc]] = await instances(1, 'cli.bcast.sigint');
    const received = deferred();
    const release = deferred<string>();
    await rpc?.serve(queue, () => {
      received.resolve();
      return release.promise;
    });
    const caller = startCli(['broadcast', queue, 'null', '--timeout-ms', '60000'], { AMQP_URL });
    await received.promise;
    caller.kill('SIGINT');
    const result = await runToEnd(caller);
    release.resolve('too late');
    assert.equal(result.code, EXIT.INTERRUPTED, result.stderr);
    assert.match(result.stderr, /^CANCELLED: /);
  });
});

test('the top-level help lists broadcast and call --stream', async () => {
  const top = await runCli(['--help']);
  assert.equal(top.code, 0, top.stderr);
  assert.match(top.stdout, /^ {2}rabbit-rpc broadcast <queue> <json>/m);
  assert.match(top.stdout, /^ {2}rabbit-rpc call <queue> <json> --stream/m);
  assert.match(top.stdout, /^ {2}broadcast {2}/m);
});
