import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { connect, type ConnectOptions, type RpcConnection } from '../src/index.js';

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
