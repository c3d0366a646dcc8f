/** Helpers of the memory suite: rabbit-rpc over the in-memory broker, no RabbitMQ needed. */
import assert from 'node:assert/strict';
import { after } from 'node:test';
import {
  connect,
  RpcError,
  type ConnectOptions,
  type ConnectionState,
  type RpcConnection,
  type RpcErrorCode,
} from '../../src/index.js';
import type { AmqpChannelLike, AmqpMessageLike } from '../../src/transport/types.js';
import { MemoryBroker } from '../../src/testing/index.js';

/** Fast reconnects, so the suite stays quick. */
export const FAST_RECONNECT = { initialDelayMs: 5, maxDelayMs: 20 } as const;

/** Connects to `broker` and closes the connection when the test file ends. */
export async function connectMemory(
  broker: MemoryBroker,
  options: Omit<ConnectOptions, 'url' | 'transport'> = {},
): Promise<RpcConnection> {
  const rpc = await connect({
    url: 'amqp://memory',
    transport: broker.transport,
    reconnect: FAST_RECONNECT,
    ...options,
  });
  after(() => rpc.close());
  return rpc;
}

/** A broker and one connection to it. */
export async function setup(
  options: Omit<ConnectOptions, 'url' | 'transport'> = {},
): Promise<{ broker: MemoryBroker; rpc: RpcConnection }> {
  const broker = new MemoryBroker();
  return { broker, rpc: await connectMemory(broker, options) };
}

/** For `assert.rejects`: an RpcError with `code`. */
export function code(expected: RpcErrorCode): (error: unknown) => true {
  return (error: unknown) => {
    assert.ok(error instanceof RpcError, `expected an RpcError, got ${String(error)}`);
    assert.equal(error.code, expected, error.message);
    return true;
  };
}

/** Resolves when `rpc.state` becomes `state` (at once if it is). */
export function stateBecomes(rpc: RpcConnection, state: ConnectionState): Promise<void> {
  if (rpc.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = rpc.onStateChange((now) => {
      if (now !== state) return;
      stop();
      resolve();
    });
  });
}

/** The AMQP reply code at the end of a library error message ("... (406)"). */
export function replyCode(error: unknown): number | undefined {
  const match = /\((\d{3})\)$/.exec(error instanceof Error ? error.message : String(error));
  return match ? Number(match[1]) : undefined;
}

/** Collects the messages a raw consumer receives; `next()` resolves with the next one. */
export class Inbox {
  readonly received: AmqpMessageLike[] = [];
  #waiting: Array<(message: AmqpMessageLike) => void> = [];
  #read = 0;

  readonly push = (message: AmqpMessageLike): void => {
    this.received.push(message);
    const waiter = this.#waiting.shift();
    if (waiter) {
      this.#read++;
      waiter(message);
    }
  };

  next(): Promise<AmqpMessageLike> {
    const ready = this.received[this.#read];
    if (ready) {
      this.#read++;
      return Promise.resolve(ready);
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }
}

/** A raw channel on a new connection to `broker`. */
export async function rawChannel(broker: MemoryBroker): Promise<AmqpChannelLike> {
  const client = await broker.connectClient();
  after(() => (client.closed ? undefined : client.close()));
  return client.channel();
}

export const text = (message: AmqpMessageLike): string =>
  new TextDecoder().decode(message.body ?? new Uint8Array());

export const bytes = (value: string): Uint8Array => new TextEncoder().encode(value);

/** Lets every pending setImmediate callback (deliveries, returns) run. */
export function settleBroker(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}
