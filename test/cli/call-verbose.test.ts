// `rabbit-rpc call --verbose` and `call --method`, against the real broker at AMQP_URL.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, test } from 'node:test';
import { connect, defineService, method, RpcError, type RpcConnection } from '../../src/index.js';
import { AMQP_URL, connectForTest, deferred, uniqueQueue } from '../helpers.js';
import { EXIT, requireBuiltCli, runCli } from './child.js';

before(() => requireBuiltCli());

/** The value of the verbose line `<marker> <key>: <value>`; fails when it is missing. */
function field(stderr: string, marker: '*' | '>' | '<', key: string): string {
  const escaped = `${marker} ${key}: `.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped}(.*)$`, 'm').exec(stderr);
  assert.ok(match?.[1] !== undefined, `no "${marker} ${key}:" line in:\n${stderr}`);
  return match[1];
}

/** Milliseconds from a `12.34 ms` value, insisting on two decimals. */
function ms(value: string): number {
  const match = /^(\d+\.\d{2}) ms\b/.exec(value);
  assert.ok(match?.[1] !== undefined, `not "N.NN ms": ${value}`);
  return Number(match[1]);
}

describe('call --verbose', () => {
  test('stdout is only the reply; stderr has the broker, timings and both sides on the wire', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.verbose');
    const seen = deferred<{ correlationId: string | undefined; deadline: number | undefined }>();
    await rpc.serve(queue, (request, ctx) => {
      seen.resolve({ correlationId: ctx.correlationId, deadline: ctx.deadline });
      return { echoed: request };
    });
    const request = '{"name":"Zoë","n":[1,2,3]}';
    const result = await runCli([
      'call',
      queue,
      request,
      '--verbose',
      '--timeout-ms',
      '7000',
      '--url',
      AMQP_URL,
    ]);
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '{"echoed":{"name":"Zoë","n":[1,2,3]}}\n');
    const { stderr } = result;
    const server = await seen.promise;

    assert.match(field(stderr, '*', 'broker'), /^amqp:\/\/guest:\*\*\*@/);
    assert.doesNotMatch(stderr, /guest:guest/);
    assert.ok(ms(field(stderr, '*', 'connect')) > 0);
    assert.equal(field(stderr, '>', 'queue'), queue);
    assert.equal(field(stderr, '*', 'timeout'), '7000 ms');

    // The request as published: what the server received.
    assert.equal(field(stderr, '>', 'body'), `${Buffer.byteLength(request)} bytes`);
    assert.equal(field(stderr, '>', 'content_type'), 'application/json');
    assert.equal(field(stderr, '>', 'correlation_id'), server.correlationId);
    assert.match(field(stderr, '>', 'reply_to'), /^amq\.gen-/);
    assert.equal(field(stderr, '>', 'expiration'), '7000');
    assert.equal(
      field(stderr, '>', 'header rpc-deadline'),
      `${server.deadline} (${new Date(server.deadline ?? NaN).toISOString()})`,
    );
    assert.doesNotMatch(stderr, /^> type:/m);

    // The reply as received.
    assert.equal(field(stderr, '<', 'body'), `${Buffer.byteLength(result.stdout) - 1} bytes`);
    assert.equal(field(stderr, '<', 'content_type'), 'application/json');
    assert.equal(field(stderr, '<', 'correlation_id'), server.correlationId);
    assert.equal(field(stderr, '<', 'headers'), '(none)');

    const roundTrip = ms(field(stderr, '*', 'round trip'));
    const call = ms(field(stderr, '*', 'call'));
    assert.ok(roundTrip > 0 && roundTrip <= call, `${roundTrip} vs ${call}`);
  });

  test('an error reply: the reply headers, the code, message and details; exit 1', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.verbose.err');
    await rpc.serve(queue, () => {
      throw new RpcError('NOT_FOUND', 'no such user', { details: { id: 7 } });
    });
    const result = await runCli(['call', queue, '{"id":7}', '-v', '--url', AMQP_URL]);
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(field(result.stderr, '<', 'header rpc-status'), 'NOT_FOUND');
    assert.equal(field(result.stderr, '<', 'header rpc-message'), 'no such user');
    assert.equal(field(result.stderr, '<', 'body'), `${'{"id":7}'.length} bytes`);
    ms(field(result.stderr, '*', 'round trip'));
    // The usual error lines come last, after the timing.
    assert.match(
      result.stderr,
      /\n\* call: [^\n]*\nNOT_FOUND: no such user\ndetails: \{"id":7\}\n$/,
    );
  });

  test('a queue that does not exist: the broker returns the request; exit 3', async () => {
    const result = await runCli(['call', uniqueQueue('cli.verbose.none'), '1', '-v'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.UNAVAILABLE, result.stderr);
    assert.equal(field(result.stderr, '<', 'returned by the broker'), '312 NO_ROUTE');
    ms(field(result.stderr, '*', 'returned after'));
    assert.match(result.stderr, /^UNAVAILABLE: /m);
  });

  test('no reply in time: how long it waited; exit 4', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.verbose.slow');
    const release = deferred<string>();
    await rpc.serve(queue, () => release.promise);
    const result = await runCli(['call', queue, '1', '-v', '--timeout-ms', '300'], { AMQP_URL });
    release.resolve('late');
    assert.equal(result.code, EXIT.DEADLINE_EXCEEDED, result.stderr);
    assert.equal(field(result.stderr, '>', 'expiration'), '300');
    // The timer starts before the publish, so the wait after it is a little under 300 ms.
    assert.ok(ms(field(result.stderr, '*', 'no reply after')) >= 250);
    assert.ok(ms(field(result.stderr, '*', 'call')) >= 300);
    assert.match(result.stderr, /^DEADLINE_EXCEEDED: /m);
  });

  test('no broker: the redacted URL, then the usual UNAVAILABLE; exit 3', async () => {
    const result = await runCli(['call', 'q', '1', '-v'], {
      AMQP_URL: 'amqp://guest:s3cret@127.0.0.1:1',
    });
    assert.equal(result.code, EXIT.UNAVAILABLE);
    assert.equal(field(result.stderr, '*', 'broker'), 'amqp://guest:***@127.0.0.1:1');
    assert.doesNotMatch(result.stderr, /s3cret/);
  });

  test('without --verbose, nothing but the reply', async () => {
    const rpc = await connectForTest();
    const queue = uniqueQueue('cli.quiet');
    await rpc.serve(queue, (request) => request);
    const result = await runCli(['call', queue, '"x"', '--url', AMQP_URL]);
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '"x"\n');
    assert.equal(result.stderr, '');
  });
});

describe('call --method', () => {
  const math = defineService(
    'cli-math',
    {
      add: method<{ a: number; b: number }, number>(),
      ping: method<null, 'pong'>(),
    },
    { queue: uniqueQueue('cli.math') },
  );

  let rpc: RpcConnection | undefined;
  before(async () => {
    rpc = await connect(AMQP_URL);
    await rpc.serve(math, {
      add: ({ a, b }) => a + b,
      ping: () => 'pong' as const,
    });
  });
  after(() => rpc?.close());

  test('calls the method of a typed service; the method travels as the AMQP type', async () => {
    const result = await runCli(['call', math.queue, '{"a":40,"b":2}', '--method', 'add', '-v'], {
      AMQP_URL,
    });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '42\n');
    assert.equal(field(result.stderr, '>', 'type'), 'add');
    assert.equal(field(result.stderr, '>', 'method'), 'add (sent as the AMQP type)');
  });

  test('another method of the same service', async () => {
    const result = await runCli(['call', math.queue, 'null', '--method', 'ping'], { AMQP_URL });
    assert.equal(result.code, EXIT.OK, result.stderr);
    assert.equal(result.stdout, '"pong"\n');
  });

  test('an unknown method: UNIMPLEMENTED, exit 1', async () => {
    const result = await runCli(['call', math.queue, '{}', '--method', 'divide'], { AMQP_URL });
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.match(result.stderr, /^UNIMPLEMENTED: /);
    assert.match(result.stderr, /^details: \{"service":"cli-math","method":"divide"\}$/m);
    assert.equal(result.stdout, '');
  });

  test('no --method on a service queue: UNIMPLEMENTED, exit 1', async () => {
    const result = await runCli(['call', math.queue, '{"a":1,"b":2}'], { AMQP_URL });
    assert.equal(result.code, EXIT.ERROR, result.stderr);
    assert.match(result.stderr, /^UNIMPLEMENTED: /);
  });
});
