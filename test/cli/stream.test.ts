/* eslint-disable @typescript-eslint/require-await -- async generators without await are the handler shape under test */
// `rabbit-rpc call --stream`, against the real broker at AMQP_URL.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { defineService, method, RpcError } from '../../src/index.js';
import { AMQP_URL, connectForTest, deferred, uniqueQueue } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli, runToEnd, startCli } from './child.js';

before(() => requireBuiltCli());

const lines = (stdout: string): string[] => stdout.split('\n').filter((line) => line !== '');

/** A handler that yields 0, 1, 2, ... until the caller stops it; `stopped` resolves then. */
function endless(): {
  handler: (request: unknown, ctx: { signal: AbortSignal }) => AsyncGenerator<number>;
  stopped: Promise<void>;
} {
  const stopped = deferred();
  return {
    stopped: stopped.promise,
    async *handler(_request, ctx) {
      try {
        for (let i = 0; !ctx.signal.aborted; i++) yield i;
      } finally {
        stopped.resolve();
      }
    },
  };
}

describe('call --stream', () => {
  test('prints each item as one line of JSON, in order, then exits 0', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream');
    await rpc.serve(queue, async function* (request) {
      for (let i = 0; i < (request as number); i++) yield { i, even: i % 2 === 0 };
    });
    // A small window: the CLI has to grant credit many times over.
    const result = await runCli(['call', queue, '200', '--stream', '--window', '4'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stderr, '');
    const printed = lines(result.stdout);
    assert.equal(printed.length, 200);
    printed.forEach((line, i) => assert.deepEqual(JSON.parse(line), { i, even: i % 2 === 0 }));
  });

  test('an empty stream prints nothing and exits 0', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.empty');
    await rpc.serve(queue, async function* () {});
    const result = await runCli(['call', queue, 'null', '--stream'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '');
  });

  test('an error mid-stream: the items before it stay, then the code and details; exit 1', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.err');
    await rpc.serve(queue, async function* () {
      yield 'a';
      yield 'b';
      throw new RpcError('NOT_FOUND', 'no more rows', { details: { after: 2 } });
    });
    const result = await runCli(['call', queue, 'null', '--stream'], { AMQP_URL });
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.equal(result.stdout, '"a"\n"b"\n');
    assert.equal(result.stderr, 'NOT_FOUND: no more rows\ndetails: {"after":2}\n');
  });

  test("the stream's deadline passes mid-stream: the items, then DEADLINE_EXCEEDED; exit 4", async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.slow');
    await rpc.serve(queue, async function* (_request, ctx) {
      yield 1;
      yield 2;
      // Then nothing until the deadline aborts the handler, which fails as handlers do.
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
      throw ctx.signal.reason;
    });
    const result = await runCli(['call', queue, 'null', '--stream', '--timeout-ms', '500'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.DEADLINE_EXCEEDED, result.stderr);
    assert.equal(result.stdout, '1\n2\n');
    assert.match(result.stderr, /^DEADLINE_EXCEEDED: /);
  });

  test('a server that replies once (no stream): one line', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.plain');
    await rpc.serve(queue, (request) => ({ whole: request }));
    const result = await runCli(['call', queue, '[1,2]', '--stream'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '{"whole":[1,2]}\n');
  });

  test('items sent as bytes are written raw, one after the other', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.bytes');
    await rpc.serve(queue, async function* () {
      yield new TextEncoder().encode('first chunk, ');
      yield new TextEncoder().encode('second chunk\n');
    });
    const result = await runCli(['call', queue, 'null', '--stream'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, 'first chunk, second chunk\n');
  });

  test('a queue that does not exist: UNAVAILABLE, exit 3', async () => {
    const result = await runCli(['call', uniqueQueue('cli.stream.none'), '1', '--stream'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.UNAVAILABLE, result.stderr);
    assert.match(result.stderr, /^UNAVAILABLE: /);
    assert.equal(result.stdout, '');
  });

  test('--method streams a method of a service', async () => {
    const counter = defineService(
      'cli-counter',
      { count: method.stream<{ to: number }, number>(), total: method<null, number>() },
      { queue: uniqueQueue('cli.stream.service') },
    );
    const rpc = await connectForTest();
    await rpc.serve(counter, {
      count: async function* ({ to }) {
        for (let n = 1; n <= to; n++) yield n;
      },
      total: () => 0,
    });
    const result = await runCli(
      ['call', counter.queue, '{"to":3}', '--stream', '--method', 'count'],
      { AMQP_URL },
    );
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '1\n2\n3\n');
  });

  test('SIGINT while streaming: exit 130, and the stream is cancelled on the server', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.sigint');
    const { handler, stopped } = endless();
    await rpc.serve(queue, handler);
    // The default window (32): no credit sent yet, so the cancel is the first control
    // message, on a channel opened for it; the CLI's close() lets it go out first.
    const caller = startCli(['call', queue, 'null', '--stream'], { AMQP_URL });
    await caller.waitFor(/^0\n/, 'stdout');
    caller.kill('SIGINT');
    const result = await runToEnd(caller);
    assert.equal(result.code, EXIT.INTERRUPTED, result.stderr);
    assert.match(result.stderr, /^CANCELLED: /);
    // The items printed are a prefix of the stream, in order.
    lines(result.stdout).forEach((line, i) => assert.equal(line, String(i)));
    await stopped; // the handler's generator was stopped (its finally ran)
  });

  test('the reader closes stdout (`| head`): stops reading, cancels the stream, exits 0', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.epipe');
    const { handler, stopped } = endless();
    await rpc.serve(queue, handler);
    const caller = startCli(['call', queue, 'null', '--stream'], { AMQP_URL });
    await caller.waitFor(/^0\n/, 'stdout'); // within the first window, as above
    caller.process.stdout?.destroy();
    const result = await runToEnd(caller);
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.signal, null);
    assert.equal(result.stderr, '');
    await stopped;
  });
});

test('call --help tells about --stream and --window', async () => {
  const result = await runCli(['call', '--help']);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^ {2}--stream /m);
  assert.match(result.stdout, /^ {2}--window <n> /m);
});

describe('call --stream --verbose', () => {
  /** The value of the verbose line `<marker> <key>: <value>`; fails when it is missing. */
  function field(stderr: string, marker: '*' | '>' | '<', key: string): string {
    const escaped = `${marker} ${key}: `.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const match = new RegExp(`^${escaped}(.*)$`, 'm').exec(stderr);
    assert.ok(match?.[1] !== undefined, `no "${marker} ${key}:" line in:\n${stderr}`);
    return match[1];
  }

  test('the window, the first item, the item count and the total on stderr', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.verbose');
    await rpc.serve(queue, async function* () {
      yield* ['x', 'y', 'z'];
    });
    const result = await runCli(['call', queue, 'null', '--stream', '-v', '--window', '5'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '"x"\n"y"\n"z"\n');
    const { stderr } = result;
    assert.equal(field(stderr, '*', 'window'), '5 items');
    assert.equal(field(stderr, '>', 'header rpc-stream-window'), '5');
    assert.equal(field(stderr, '<', 'header rpc-stream'), 'item');
    const first = /^(\d+\.\d{2}) ms \(publish to first item\)$/.exec(
      field(stderr, '*', 'first item'),
    );
    const total = /^(\d+\.\d{2}) ms in all/.exec(field(stderr, '*', 'stream'));
    assert.ok(first?.[1] !== undefined && total?.[1] !== undefined, stderr);
    assert.ok(Number(first[1]) > 0 && Number(first[1]) <= Number(total[1]), stderr);
    assert.equal(field(stderr, '*', 'items'), '3');
  });

  test('an error after items: the count, then the usual error lines last', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.stream.verbose.err');
    await rpc.serve(queue, async function* () {
      yield 1;
      throw new RpcError('ABORTED', 'stopped');
    });
    const result = await runCli(['call', queue, 'null', '--stream', '-v'], { AMQP_URL });
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.equal(field(result.stderr, '*', 'window'), '32 items (default)');
    assert.match(result.stderr, /\n\* items: 1\n\* stream: [^\n]*\nABORTED: stopped\n$/);
  });
});
