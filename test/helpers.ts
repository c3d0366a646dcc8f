import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { after } from 'node:test';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import {
  connect,
  RpcError,
  type ConnectOptions,
  type RpcConnection,
  type RpcErrorCode,
} from '../src/index.js';

/** The broker the integration tests use; scripts/test.mjs sets it when it starts one. */
export const AMQP_URL = process.env['AMQP_URL'] ?? 'amqp://guest:guest@localhost:5672';

/**
 * This test run's id. Every queue the tests create on the shared broker carries it, so that
 * the check after the suite (scripts/leftovers.mjs) can tell this run's leftovers from what
 * other runs and programs have on the same broker. scripts/test.mjs sets it for the whole
 * run; a file run on its own gets one of its own.
 */
export const RUN_ID = process.env['RABBIT_RPC_TEST_RUN'] ?? `r${randomBytes(4).toString('hex')}`;

/** Where scripts/test.mjs wants the names of created queues (one `queue <name>` a line). */
const LEDGER = process.env['RABBIT_RPC_TEST_LEDGER'];

const createdQueues = new Set<string>();

/**
 * Records `queue` as created by this test file: it is deleted when the file's process is
 * about to exit (after every test and hook, so no server of the file can declare it again),
 * and the check after the suite looks for it. For queues the library names, such as a
 * service's `rpc.<name>`.
 */
export function deleteAtExit(queue: string): string {
  if (createdQueues.size === 0) process.once('beforeExit', () => void deleteCreatedQueues());
  createdQueues.add(queue);
  if (LEDGER !== undefined) appendFileSync(LEDGER, `queue ${queue}\n`);
  return queue;
}

/** A queue name no other test (or run) uses, carrying the run id; deleted at exit. */
export function uniqueQueue(prefix: string): string {
  return deleteAtExit(`test.${prefix}.${RUN_ID}.${randomBytes(4).toString('hex')}`);
}

/**
 * A service name (no dots) no other test uses, for `defineService(name, ...)` with the
 * default queue `rpc.<name>`, which is deleted at exit.
 */
export function uniqueServiceName(prefix: string): string {
  const name = `test-${prefix}-${RUN_ID}-${randomBytes(4).toString('hex')}`;
  deleteAtExit(`rpc.${name}`);
  return name;
}

/** Connections of connectForTest() not closed yet. */
const openConnections = new Set<RpcConnection>();

async function deleteCreatedQueues(): Promise<void> {
  // Servers first: a server whose queue is deleted declares it again (durable, it would
  // outlive the test), and after() hooks may run in either order.
  await Promise.all([...openConnections].map((rpc) => rpc.close()));
  const client = new AMQPClient(AMQP_URL);
  try {
    await client.connect();
  } catch {
    // No shared broker (a file whose queues live on a private one): nothing to delete here.
    return;
  }
  try {
    const channel = await client.channel();
    for (const name of createdQueues) await channel.queueDelete(name);
    createdQueues.clear();
    await client.close();
  } catch (error) {
    // The check after the suite reports what is left; say why here.
    process.stderr.write(`test/helpers.ts: deleting this file's queues failed: ${String(error)}\n`);
  }
}

/** Connects to the test broker and closes the connection when the test file ends. */
export async function connectForTest(
  options: Omit<ConnectOptions, 'url'> = {},
): Promise<RpcConnection> {
  const rpc = await connect({ url: AMQP_URL, ...options });
  openConnections.add(rpc);
  after(async () => {
    await rpc.close();
    openConnections.delete(rpc);
  });
  return rpc;
}

/** A promise with its resolve function, for waiting on an event instead of sleeping. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Fails the test file if the library lets a rejection or an exception escape: a library
 * must never crash its host. Call once at the top of a test file.
 */
export function failOnUnhandled(): void {
  const escaped: unknown[] = [];
  const record = (reason: unknown) => escaped.push(reason);
  process.on('unhandledRejection', record);
  process.on('uncaughtException', record);
  after(() => {
    process.off('unhandledRejection', record);
    process.off('uncaughtException', record);
    if (escaped.length > 0) throw new AggregateError(escaped, 'unhandled rejection or exception');
  });
}

/** Asserts that `error` is an RpcError with `code`; returns it typed. */
export function assertCode(error: unknown, code: RpcErrorCode): RpcError {
  assert.ok(error instanceof RpcError, `expected an RpcError ${code}, got ${String(error)}`);
  assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
  return error;
}

/** The code of the RpcError `promise` rejects with; fails the test if it resolves. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RpcError, String(error));
    return error.code;
  }
  assert.fail('expected a rejection');
}

/**
 * Resolves once `check()` is true, polling every `everyMs` (for broker-side facts that
 * send no event, such as a queue's consumer count); rejects after `timeoutMs`.
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/**
 * A server-named reply queue consumed on `channel`, as a plain AMQP caller would have:
 * replies sent to `name` are collected in `replies`; `next(n)` waits until there are `n`.
 */
export async function collectReplies(channel: AMQPChannel) {
  const { name } = await channel.queueDeclare('', { exclusive: true, autoDelete: true });
  const replies: AMQPMessage[] = [];
  const waiters: Array<() => void> = [];
  await channel.basicConsume(name, { noAck: true }, (message) => {
    replies.push(message);
    for (const wake of waiters.splice(0)) wake();
  });
  return {
    name,
    replies,
    next: async (count: number): Promise<AMQPMessage[]> => {
      while (replies.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
      return replies;
    },
  };
}

let transientRefused: boolean | undefined;

/**
 * True when the test broker refuses non-durable, non-exclusive queues (RabbitMQ 4.3's
 * default, `deprecated_features.permit.transient_nonexcl_queues = false`): tried on a
 * throwaway connection, which the refusal (541) closes. The answer is cached, not the
 * promise: node:test finds a hook's test from the async context, and awaiting a promise
 * made in an earlier test would register `after` hooks on that finished test.
 */
export async function refusesTransientQueues(url = AMQP_URL): Promise<boolean> {
  if (transientRefused !== undefined) return transientRefused;
  const client = new AMQPClient(url);
  await client.connect();
  const name = `test.transient-probe.${randomBytes(4).toString('hex')}`;
  try {
    const channel = await client.channel();
    await channel.queueDeclare(name, { durable: false, autoDelete: false, exclusive: false });
    await channel.queueDelete(name);
    transientRefused = false;
  } catch (error) {
    if (!/transient_nonexcl_queues/.test(String(error))) throw error;
    transientRefused = true;
  } finally {
    if (!client.closed) await client.close();
  }
  return transientRefused;
}
