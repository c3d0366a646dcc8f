// The CLI's messages in its own words: usage errors that say what to fix, the broker URL
// named after where it came from, ping's time budget, and RpcError's name in every build.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { defineService, method } from '../../src/index.js';
import { connectForTest, uniqueQueue, uniqueServiceName } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli } from './child.js';

const UNREACHABLE = 'amqp://guest:s3cret@127.0.0.1:1';

before(() => requireBuiltCli());

describe('usage errors', () => {
  test('rabbit-rpc alone shows the help (on stderr, exit 2: there was no command)', async () => {
    const result = await runCli([]);
    assert.equal(result.code, EXIT.USAGE);
    assert.match(result.stderr, /^Usage:$/m);
    assert.match(result.stderr, /^Commands:$/m);
    assert.equal(result.stdout, '');
  });

  const cases: Array<[string, string[], RegExp]> = [
    [
      'a negative number',
      ['call', 'q', '1', '--timeout-ms', '-5'],
      /--timeout-ms must be an integer from 1/,
    ],
    ['a misspelt flag', ['call', 'q', '1', '--timeot-ms', '5'], /did you mean --timeout-ms\?/],
    ['a flag without its value', ['ping', 'q', '--timeout-ms'], /--timeout-ms needs a value/],
    ['a value for a switch', ['call', 'q', '1', '--stream=yes'], /--stream takes no value/],
    ['a misspelt command', ['cal', 'q', '1'], /unknown command "cal": did you mean call\?/],
    [
      'a JSON value starting with "-"',
      ['call', 'q', '-1'],
      /after --, e\.g\. rabbit-rpc call <queue> -- -1/,
    ],
  ];
  for (const [name, args, expected] of cases) {
    test(`${name}: what to fix, in the CLI's words (exit 2)`, async () => {
      const result = await runCli(args, { AMQP_URL: UNREACHABLE });
      assert.equal(result.code, EXIT.USAGE, result.stderr);
      assert.match(result.stderr, expected);
      // No text of node's argument parser: "ambiguous", "Unknown option '", "To specify".
      assert.doesNotMatch(result.stderr, /ambiguous|Unknown option|To specify/);
      const firstLine = result.stderr.split('\n')[0] ?? '';
      assert.equal((firstLine.match(/"/g) ?? []).length % 2, 0, `unbalanced quotes: ${firstLine}`);
    });
  }

  for (const [name, env, args, expected] of [
    [
      'an empty AMQP_URL',
      { AMQP_URL: '' },
      ['call', 'q', '1'],
      /^INVALID_ARGUMENT: AMQP_URL is empty/,
    ],
    [
      'a malformed AMQP_URL',
      { AMQP_URL: 'x y' },
      ['ping', 'q'],
      /^INVALID_ARGUMENT: AMQP_URL is not a valid URL/,
    ],
    ['an empty --url', {}, ['demo', '--url', ''], /^INVALID_ARGUMENT: --url is empty/],
  ] as const) {
    test(`${name} is named as such (exit 2)`, async () => {
      const result = await runCli(args, env);
      assert.equal(result.code, EXIT.USAGE, result.stderr);
      assert.match(result.stderr, expected);
    });
  }
});

describe("ping's time budget covers connecting", () => {
  test('a broker that accepts TCP but never speaks: DEADLINE_EXCEEDED within --timeout-ms, exit 4', async (t) => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      silent.close();
    });
    const { port } = silent.address() as { port: number };
    const result = await runCli([
      'ping',
      'q',
      '--timeout-ms',
      '300',
      '--url',
      `amqp://127.0.0.1:${port}`,
    ]);
    assert.equal(result.code, EXIT.DEADLINE_EXCEEDED, result.stderr);
    assert.match(result.stderr, /^DEADLINE_EXCEEDED: .*within 300 ms/);
    assert.doesNotMatch(result.stderr, /No RabbitMQ answered|install/);
  });

  test('a tiny budget against the running broker: never "no RabbitMQ answered"', async () => {
    for (const budget of ['1', '12']) {
      const result = await runCli(['ping', 'nothing.here', '--timeout-ms', budget]);
      assert.ok(
        result.code === EXIT.DEADLINE_EXCEEDED || result.code === EXIT.UNAVAILABLE,
        `exit ${String(result.code)}: ${result.stderr}`,
      );
      assert.doesNotMatch(result.stderr, /No RabbitMQ answered|install/);
      if (result.code === EXIT.DEADLINE_EXCEEDED) {
        assert.match(result.stderr, new RegExp(`within ${budget} ms`));
      }
    }
  });
});

describe('RpcError is named RpcError in every build', () => {
  const dist = (name: string) => fileURLToPath(new URL(`../../dist/${name}`, import.meta.url));
  const check = (RpcErrorClass: new (code: 'NOT_FOUND', message: string) => Error): void => {
    const error = new RpcErrorClass('NOT_FOUND', 'no user 42');
    assert.equal(error.constructor.name, 'RpcError');
    assert.equal(error.name, 'RpcError');
    assert.equal(String(error), 'RpcError: no user 42');
    assert.match(inspect(error), /^RpcError: no user 42\n/);
    assert.match(error.stack ?? '', /^RpcError: no user 42\n/);
  };

  test('dist/index.js (ES module)', async () => {
    const esm = (await import(dist('index.js'))) as {
      RpcError: new (c: 'NOT_FOUND', m: string) => Error;
    };
    check(esm.RpcError);
  });

  test('dist/index.cjs (CommonJS)', () => {
    const cjs = createRequire(import.meta.url)(dist('index.cjs')) as {
      RpcError: new (c: 'NOT_FOUND', m: string) => Error;
    };
    check(cjs.RpcError);
  });
});

describe('hints name the CLI flags, not protocol headers', () => {
  test('a streaming handler called without --stream: add --stream', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.hint.stream');
    // A handler that returns an AsyncIterable streams its reply.
    await rpc.serve(queue, () => ({
      [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true, value: 1 }) }),
    }));
    const result = await runCli(['call', queue, 'null']);
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.match(result.stderr, /^FAILED_PRECONDITION: .*rabbit-rpc call --stream/);
    assert.doesNotMatch(result.stderr, /rpc-stream-window/);
  });

  test('a service called without --method: name one with --method', async () => {
    const rpc = await connectForTest();
    const service = defineService(uniqueServiceName('clihint'), { ping: method<null, 'pong'>() });
    await rpc.serve(service, { ping: () => 'pong' as const });
    const result = await runCli(['call', service.queue, 'null']);
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.match(result.stderr, /^UNIMPLEMENTED: .*rabbit-rpc call --method <name>/);
    assert.doesNotMatch(result.stderr, /type property/);
  });
});
