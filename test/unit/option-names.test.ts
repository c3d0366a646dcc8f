// Unknown option names are INVALID_ARGUMENT naming the option and the closest valid one, in
// every public options object (JavaScript callers get no compile-time check).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { connect, defineService, RpcError, type RpcConnection } from '../../src/index.js';
import { closestName, editDistance } from '../../src/option-names.js';
import { metrics, tracing } from '../../src/otel/index.js';
import { FaultProxy, MemoryBroker, startPrivateBroker } from '../../src/testing/index.js';

/** What JavaScript callers can write: any object where options go. */
type Loose = Record<string, unknown>;

async function refusal(attempt: () => unknown): Promise<RpcError> {
  try {
    await attempt();
  } catch (error) {
    assert.ok(error instanceof RpcError, String(error));
    assert.equal(error.code, 'INVALID_ARGUMENT', error.message);
    return error;
  }
  assert.fail('expected INVALID_ARGUMENT');
}

/** The option and the suggestion, read from the error's details (not its message). */
function detailsOf(error: RpcError): { option?: string; suggestion?: string } {
  return error.details as { option?: string; suggestion?: string };
}

async function withMemory<T>(run: (rpc: RpcConnection) => Promise<T>): Promise<T> {
  const broker = new MemoryBroker();
  const rpc = await connect({ url: 'amqp://memory', transport: broker.transport });
  try {
    return await run(rpc);
  } finally {
    await rpc.close();
    await broker.close();
  }
}

test('edit distance: swaps, insertions and substitutions cost 1 each', () => {
  assert.equal(editDistance('prefech', 'prefetch'), 1);
  assert.equal(editDistance('tiemoutMs', 'timeoutMs'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(closestName('timeout', ['timeoutMs', 'signal']), 'timeoutMs');
  assert.equal(closestName('Prefetch', ['prefetch', 'durable']), 'prefetch');
  assert.equal(closestName('bogusOption', ['url', 'frameMax']), undefined);
});

test('connect(): an unknown option, also nested, before anything connects', async () => {
  const transport = new MemoryBroker().transport;
  const bogus = await refusal(() =>
    connect({ url: 'amqp://memory', transport, bogusOption: 1 } as Loose),
  );
  assert.equal(detailsOf(bogus).option, 'bogusOption');
  const near = await refusal(() =>
    connect({ url: 'amqp://memory', transport, defaultTimeout: 5 } as Loose),
  );
  assert.deepEqual(detailsOf(near), { option: 'defaultTimeout', suggestion: 'defaultTimeoutMs' });
  const nested = await refusal(() =>
    connect({ url: 'amqp://memory', transport, reconnect: { maxDelay: 5 } } as Loose),
  );
  assert.equal(detailsOf(nested).suggestion, 'maxDelayMs');
  await refusal(() => connect({ url: 'amqp://memory', transport, batch: { maxCall: 2 } } as Loose));
});

test('serve(), call(), stream(), broadcast(): the typo is named, nothing runs', async () => {
  await withMemory(async (rpc) => {
    let runs = 0;
    const serveError = await refusal(() => rpc.serve('q', () => runs++, { prefech: 1 } as Loose));
    assert.deepEqual(detailsOf(serveError), { option: 'prefech', suggestion: 'prefetch' });
    await refusal(() => rpc.serve('q', () => runs++, { dedupe: { maxEntry: 1 } } as Loose));
    await rpc.serve('q', () => runs++);

    const callError = await refusal(() => rpc.call('q', 1, { timeout: 200 } as Loose));
    assert.deepEqual(detailsOf(callError), { option: 'timeout', suggestion: 'timeoutMs' });
    const streamError = await refusal(async () => {
      for await (const item of rpc.stream('q', 1, { windw: 2 } as Loose)) assert.fail(String(item));
    });
    assert.equal(detailsOf(streamError).suggestion, 'window');
    const broadcastError = await refusal(() => rpc.broadcast('q', 1, { maximum: 2 } as Loose));
    assert.equal(detailsOf(broadcastError).option, 'maximum');
    assert.equal(runs, 0, 'no handler ran');
    // Known names with undefined values are fine, as TypeScript allows.
    assert.equal(await rpc.call('q', 1, { timeoutMs: undefined } as Loose), 0);
  });
});

test('typed services: defineService(), serve(service), client() and its methods', async () => {
  await refusal(() => defineService('s', {}, { queu: 'x' } as Loose));
  const math = defineService('math', {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
  });
  await withMemory(async (rpc) => {
    const implementation = { add: ({ a, b }: { a: number; b: number }) => a + b };
    const serveError = await refusal(() =>
      rpc.serve(math, implementation, { validateOutputs: true } as Loose),
    );
    assert.equal(detailsOf(serveError).suggestion, 'validateOutput');
    await rpc.serve(math, implementation);
    await refusal(() => rpc.client(math, { validate: true } as Loose));
    const client = rpc.client(math);
    const methodError = await refusal(() =>
      client.add({ a: 1, b: 2 }, { timeOutMs: 100 } as Loose),
    );
    assert.equal(detailsOf(methodError).suggestion, 'timeoutMs');
    assert.equal(await client.add({ a: 1, b: 2 }), 3);
  });
});

test('rabbit-rpc/testing and rabbit-rpc/otel options', async () => {
  await refusal(() => startPrivateBroker({ amqpPrt: 1 } as Loose));
  await refusal(() => FaultProxy.start(1, { latency: 5 } as Loose));
  await refusal(() => tracing({ tracer: undefined } as Loose));
  await refusal(() => metrics({ meterProvder: undefined } as Loose));
});
