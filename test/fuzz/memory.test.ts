/**
 * Property-based fuzzing of the whole receive path, over the in-memory broker (the real
 * server, caller, control plane and stream code; only the socket is missing): hostile
 * callers send requests, batches and control messages (cancel, credit, broadcast) with
 * random properties and bodies; a hostile server answers calls, streams and batches with
 * random replies. Properties: nothing escapes (no uncaught exception, no unhandled
 * rejection), every call ends with a value or an RpcError with a code, and the server
 * still answers a well-formed call after each run.
 */
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { BATCH_CONTENT_TYPE, readReplyBatch } from '../../src/protocol/batch.js';
import { decodeReplyOutcome } from '../../src/protocol/error-reply.js';
import { connect, ERROR_CODES, RpcError, type RpcConnection } from '../../src/index.js';
import { MemoryBroker } from '../../src/testing/index.js';
import type {
  AmqpChannelLike,
  AmqpClientLike,
  AmqpField,
  AmqpMessageLike,
  AmqpProperties,
} from '../../src/transport/types.js';
import { failOnUnhandled } from '../helpers.js';
import { FAST_RECONNECT } from '../memory/memory-helpers.js';
import { body, contentType, headers } from './arbitraries.js';

failOnUnhandled();

/**
 * Node's warning that a timer was given more than 2^31 - 1 ms and fires after 1 ms: a
 * deadline or an expiration chosen by a peer reached a plain setTimeout (defect 7).
 */
const overflows: Error[] = [];
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutOverflowWarning') overflows.push(warning);
});

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 60);

let broker: MemoryBroker;
let server: RpcConnection;
let caller: RpcConnection;
let client: AmqpClientLike;
let raw: AmqpChannelLike;
/** The server connection's control queue (cancels, credit, broadcasts land there). */
let controlQueue: string;
/** Where the hostile callers' requests ask their replies to go. */
let collector: string;
const collected: AmqpMessageLike[] = [];

before(async () => {
  broker = new MemoryBroker();
  // Connections made here, not with connectMemory(): its after() would close them when the
  // first suite ends.
  const options = { url: 'amqp://memory', transport: broker.transport, reconnect: FAST_RECONNECT };
  server = await connect(options);
  const before = new Set(broker.queueNames());
  await server.serve('fuzz', (request, ctx) => (ctx.signal.aborted ? 'aborted' : request), {
    prefetch: 4,
  });
  // eslint-disable-next-line @typescript-eslint/require-await -- a generator handler
  await server.serve('fuzz-stream', async function* (request) {
    yield request;
    yield 'second';
  });
  const created = broker
    .queueNames()
    .filter((name) => !before.has(name) && name.startsWith('amq.gen'));
  assert.equal(created.length, 1, 'one control queue');
  controlQueue = created[0] ?? '';
  caller = await connect({ ...options, batch: true });
  client = await broker.connectClient();
  raw = await client.channel();
  collector = (await raw.queueDeclare('', { exclusive: true, autoDelete: true })).name;
  await raw.basicConsume(collector, { noAck: true }, (message) => collected.push(message));
});

after(async () => {
  await client.close();
  await caller.close();
  await server.close();
});

/** What a hostile message's properties may hold; `replyTo` is the collector or garbage. */
const hostileProperties = (replyTo: fc.Arbitrary<string>): fc.Arbitrary<AmqpProperties> =>
  fc.record(
    {
      headers,
      contentType: contentType.map((type) => type ?? 'application/json'),
      correlationId: fc.string({ maxLength: 16 }),
      replyTo,
      type: fc.string({ maxLength: 8 }),
      messageId: fc.string({ maxLength: 8 }),
      userId: fc.string({ maxLength: 8 }),
      expiration: fc.constantFrom('0', '1000', 'garbage', '-1', '3000000000'),
    },
    { requiredKeys: [] },
  );

/** Checks a reply the server sent: it decodes to a value or an RpcError with a code. */
function checkReply(message: AmqpMessageLike): void {
  if (message.properties.contentType === BATCH_CONTENT_TYPE) {
    for (const [, outcome] of readReplyBatch(message.body)) checkOutcome(outcome);
  } else checkOutcome(decodeReplyOutcome(message));
}

function checkOutcome(outcome: unknown): void {
  if (outcome instanceof RpcError) assert.ok(ERROR_CODES.includes(outcome.code), outcome.code);
}

/** The outcome of a call: its value, or its RpcError; anything else fails. */
async function settled(work: Promise<unknown>): Promise<unknown> {
  try {
    return await work;
  } catch (error) {
    assert.ok(error instanceof RpcError, `rejected with a non-RpcError: ${String(error)}`);
    checkOutcome(error);
    return error;
  }
}

describe('fuzz: hostile callers, through the memory broker', () => {
  test('requests, batches and control messages with random properties and bodies', async () => {
    const target = fc.constantFrom('fuzz', 'fuzz-stream', 'control');
    const message = fc.record({
      target,
      properties: hostileProperties(
        fc
          .oneof(fc.constant(''), fc.string({ maxLength: 6 }))
          .map((s) => (s === '' ? 'COLLECTOR' : s)),
      ),
      body,
    });
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 6 }), async (messages) => {
        for (const { target: to, properties, body: bytes } of messages) {
          const props = { ...properties };
          if (props.replyTo === 'COLLECTOR') props.replyTo = collector;
          broker.publish(to === 'control' ? controlQueue : to, bytes, props);
        }
        // The server serves on, whatever came before.
        assert.equal(await caller.call('fuzz', 'still here', { timeoutMs: 5_000 }), 'still here');
        for (const reply of collected.splice(0)) checkReply(reply);
        // Warnings are emitted on the next tick.
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(overflows.splice(0), [], 'a peer-chosen duration overflowed a timer');
      }),
      { numRuns: RUNS },
    );
  });
});

describe('fuzz: a hostile server, through the memory broker', () => {
  /** Answers each request on `queue` with `replies(request)`, then a well-formed end. */
  async function hostileServer(
    queue: string,
    replies: () => Array<{
      headers: Record<string, AmqpField>;
      contentType: string | undefined;
      body: Uint8Array;
    }>,
    end: Record<string, AmqpField>,
  ): Promise<void> {
    await raw.queueDeclare(queue, {});
    await raw.basicConsume(queue, { noAck: true }, (request) => {
      const { replyTo, correlationId } = request.properties;
      if (!replyTo) return;
      for (const reply of replies()) {
        const properties: AmqpProperties = { headers: reply.headers };
        if (correlationId !== undefined) properties.correlationId = correlationId;
        if (reply.contentType !== undefined) properties.contentType = reply.contentType;
        broker.publish(replyTo, reply.body, properties);
      }
      const properties: AmqpProperties = { headers: end };
      if (correlationId !== undefined) properties.correlationId = correlationId;
      broker.publish(replyTo, Buffer.from('"end"'), properties);
    });
  }

  test('calls, batched calls and streams get random replies: each ends with a value or an RpcError', async () => {
    let next: Array<{
      headers: Record<string, AmqpField>;
      contentType: string | undefined;
      body: Uint8Array;
    }> = [];
    await hostileServer('hostile', () => next, {});
    await hostileServer('hostile-stream', () => next, { 'rpc-stream': 'end' });
    const reply = fc.record({ headers, contentType, body });
    await fc.assert(
      fc.asyncProperty(fc.array(reply, { maxLength: 4 }), async (replies) => {
        next = replies;
        // Two calls in one tick: one batch (the caller batches); then one alone.
        const outcomes = await Promise.all([
          settled(caller.call('hostile', 1, { timeoutMs: 2_000 })),
          settled(caller.call('hostile', 2, { timeoutMs: 2_000 })),
        ]);
        outcomes.push(await settled(caller.call('hostile', 3, { timeoutMs: 2_000 })));
        const items: unknown[] = [];
        const streamed = settled(
          (async () => {
            for await (const item of caller.stream('hostile-stream', 'go', { timeoutMs: 2_000 })) {
              items.push(item);
              if (items.length > 100) break;
            }
          })(),
        );
        checkOutcome(await streamed);
      }),
      { numRuns: RUNS },
    );
  });
});
