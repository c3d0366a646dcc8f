import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { RpcError, type HandlerContext, type RpcConnection } from '../index.js';
import type { DemoArgs } from './args.js';
import { openDemoBroker, type DemoBroker } from './demo-broker.js';
import { brokerUrl, EXIT, formatJson, formatMs, paint, reportConnectError } from './output.js';

/** How a demo call is expected to end: a reply, or an error with this code. */
interface DemoCall {
  readonly label: string;
  readonly request: unknown;
  readonly timeoutMs?: number;
  readonly expect: 'reply' | 'INVALID_ARGUMENT' | 'DEADLINE_EXCEEDED';
}

/**
 * `rabbit-rpc demo`: a server and its caller in one process, on a queue of its own. Prints
 * each outcome with its latency. Returns the exit code (1 when an outcome was unexpected).
 */
export async function runDemo(args: DemoArgs): Promise<number> {
  const url = brokerUrl(args.url);
  let broker: DemoBroker;
  try {
    broker = await openDemoBroker(url, (line) => process.stdout.write(`${line}\n`));
  } catch (error) {
    return reportConnectError(error, url);
  }
  const rpc: RpcConnection = broker.rpc;
  if (broker.kind !== 'given') process.stdout.write('\n');
  const queue = `rabbit-rpc.demo.${randomBytes(4).toString('hex')}`;
  let surprises = 0;
  const show = async (call: DemoCall, indent = ''): Promise<void> => {
    const started = performance.now();
    let outcome: string;
    let expected: boolean;
    try {
      const options = call.timeoutMs === undefined ? {} : { timeoutMs: call.timeoutMs };
      const reply = await rpc.call(queue, call.request, options);
      outcome = `→ ${formatJson(reply)}`;
      expected = call.expect === 'reply';
    } catch (thrown) {
      const error = RpcError.from(thrown);
      outcome = `→ ${paint(error.code, 'red', process.stdout)}: ${error.message}`;
      expected = call.expect === error.code;
    }
    const latency = paint(`(${formatMs(performance.now() - started)})`, 'dim', process.stdout);
    if (!expected) surprises++;
    process.stdout.write(
      `${indent}${call.label} ${outcome} ${latency}${expected ? '' : '  [unexpected]'}\n`,
    );
  };

  try {
    await rpc.serve(queue, demoHandler, { autoDelete: true });
    const where = broker.kind === 'memory' ? 'the in-memory broker' : rpc.url;
    process.stdout.write(`Connected to ${where}; serving the demo queue "${queue}".\n\n`);

    process.stdout.write('One call (the first one also opens the reply queue):\n');
    await show({ label: '  call "Hello World"', request: 'Hello World', expect: 'reply' });

    process.stdout.write('\nThe same call again, now that everything is open:\n');
    await show({ label: '  call "Hello World"', request: 'Hello World', expect: 'reply' });

    process.stdout.write('\nFive calls at once, over one connection:\n');
    const started = performance.now();
    await Promise.all(
      ['one', 'two', 'three', 'four', 'five'].map((word) =>
        show({ label: `  call "${word}"`, request: word, expect: 'reply' }),
      ),
    );
    process.stdout.write(`  all five in ${formatMs(performance.now() - started)}\n`);

    process.stdout.write('\nStructured requests and a handler error with a code:\n');
    await show({
      label: '  call {"divide":[84,2]}',
      request: { divide: [84, 2] },
      expect: 'reply',
    });
    await show({
      label: '  call {"divide":[1,0]}',
      request: { divide: [1, 0] },
      expect: 'INVALID_ARGUMENT',
    });

    process.stdout.write('\nA handler slower than the deadline:\n');
    await show({
      label: '  call {"sleepMs":1000} with --timeout-ms 200',
      request: { sleepMs: 1000 },
      timeoutMs: 200,
      expect: 'DEADLINE_EXCEEDED',
    });
  } catch (thrown) {
    const error = RpcError.from(thrown);
    process.stderr.write(`${error.code}: ${error.message}\n`);
    surprises++;
  } finally {
    await broker.close();
  }
  process.stdout.write(
    surprises === 0
      ? '\nDone: connection closed.\n'
      : `\n${surprises} outcome(s) were not what the demo expected.\n`,
  );
  return surprises === 0 ? EXIT.OK : EXIT.ERROR;
}

/**
 * The demo's handler: a string gets `Processed: ...`, as the RabbitMQ RPC tutorial's server answers; `{divide: [a, b]}`
 * divides (b = 0 throws INVALID_ARGUMENT); `{sleepMs: n}` sleeps, stopping early when the
 * caller's deadline passes (ctx.signal).
 */
async function demoHandler(request: unknown, ctx: HandlerContext): Promise<unknown> {
  if (typeof request === 'string') return `Processed: ${request}`;
  if (typeof request === 'object' && request !== null) {
    if ('divide' in request) {
      const [a, b] = Array.isArray(request.divide) ? (request.divide as unknown[]) : [];
      if (typeof a !== 'number' || typeof b !== 'number') {
        throw new RpcError('INVALID_ARGUMENT', 'divide takes two numbers');
      }
      if (b === 0)
        throw new RpcError('INVALID_ARGUMENT', 'cannot divide by zero', { details: { a, b } });
      return a / b;
    }
    if ('sleepMs' in request && typeof request.sleepMs === 'number') {
      try {
        await sleep(request.sleepMs, undefined, { signal: ctx.signal });
      } catch (error) {
        // The deadline passed: say so (DEADLINE_EXCEEDED, the signal's reason) rather than
        // "The operation was aborted", should this reply reach the caller before its timer.
        ctx.signal.throwIfAborted();
        throw error;
      }
      return `slept ${request.sleepMs} ms`;
    }
  }
  throw new RpcError('INVALID_ARGUMENT', 'send a string, {"divide":[a,b]} or {"sleepMs":n}');
}
