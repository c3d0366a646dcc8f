/**
 * A consumer of the in-memory transport: its `wait()` resolves when the client cancels it
 * and rejects when the broker ends it, as with @cloudamqp/amqp-client.
 * @internal
 */
import type { AmqpConsumerLike, AmqpMessageLike } from '../transport/types.js';
import type { BrokerCore } from './memory-core.js';
import type { CoreChannel, CoreClient } from './memory-model.js';

/**
 * What a consumer needs of its channel (memory-channel.ts implements it): declared here so
 * that the consumer does not import the channel, which imports the consumer.
 */
export interface ConsumerChannel extends CoreChannel {
  readonly closed: boolean;
  readonly client: CoreClient & { readonly core: BrokerCore };
}

export class MemoryConsumer implements AmqpConsumerLike {
  active = true;
  /** Deliveries to this consumer awaiting an ack. */
  unacked = 0;
  #error: Error | undefined;
  #waiter: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(
    readonly channel: ConsumerChannel,
    readonly queue: string,
    readonly tag: string,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    readonly prefetch: number,
    readonly callback: (message: AmqpMessageLike) => void,
  ) {}

  hasRoom(): boolean {
    return this.active && (this.noAck || this.prefetch === 0 || this.unacked < this.prefetch);
  }

  /** Resolves when cancelled by the client; rejects when the broker ends the consumer. */
  wait(): Promise<void> {
    if (this.#error) return Promise.reject(this.#error);
    if (!this.active) return Promise.resolve();
    if (!this.#waiter) {
      let resolve!: () => void;
      let reject!: (e: Error) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.#waiter = { promise, resolve, reject };
    }
    return this.#waiter.promise;
  }

  cancel(): Promise<unknown> {
    if (this.channel.closed || !this.active) return Promise.resolve();
    this.channel.consumers.delete(this);
    this.channel.client.core.removeConsumer(this);
    this.setClosed(undefined);
    return Promise.resolve();
  }

  setClosed(error: Error | undefined): void {
    if (!this.active) return;
    this.active = false;
    this.#error = error;
    if (error) this.#waiter?.reject(error);
    else this.#waiter?.resolve();
  }
}
