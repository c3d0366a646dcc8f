import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
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

const createdQueues: string[] = [];

/** A queue name no other test (or earlier run) uses; deleted when the test file ends. */
export function uniqueQueue(prefix: string): string {
  if (createdQueues.length === 0) after(deleteCreatedQueues);
  const name = `test.${prefix}.${randomBytes(4).toString('hex')}`;
  createdQueues.push(name);
  return name;
}

async function deleteCreatedQueues(): Promise<void> {
  const client = new AMQPClient(AMQP_URL);
  await client.connect();
  const channel = await client.channel();
  for (const name of createdQueues.splice(0)) await channel.queueDelete(name);
  await client.close();
}

/** Connects to the test broker and closes the connection when the test file ends. */
export async function connectForTest(
  options: Omit<ConnectOptions, 'url'> = {},
): Promise<RpcConnection> {
  const rpc = await connect({ url: AMQP_URL, ...options });
  after(() => rpc.close());
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
