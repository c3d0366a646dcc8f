/**
 * The client side of the in-memory transport: a connection, its channels and consumers,
 * shaped like @cloudamqp/amqp-client's (promises, error messages ending in "(code)",
 * consumers whose `wait()` rejects when the broker ends them). The channel is in
 * memory-channel.ts, the consumer in memory-consumer.ts.
 * @internal
 */
import type { AmqpChannelLike, AmqpClientLike } from '../transport/types.js';
import { MemoryChannel } from './memory-channel.js';
import type { BrokerCore } from './memory-core.js';

export class MemoryClient implements AmqpClientLike {
  closed = false;
  blocked: string | undefined;
  onblocked?: ((reason: string) => void) | undefined;
  onunblocked?: (() => void) | undefined;
  ondisconnect?: ((error?: Error) => void) | undefined;
  readonly channels = new Set<MemoryChannel>();
  #nextChannelId = 1;

  constructor(
    readonly core: BrokerCore,
    /** The user of the URL: `user_id` on a publish must match it, as on RabbitMQ. */
    readonly user: string,
  ) {}

  channel(): Promise<AmqpChannelLike> {
    if (this.closed) return Promise.reject(new Error('Connection closed'));
    const channel = new MemoryChannel(this, this.#nextChannelId++);
    this.channels.add(channel);
    return Promise.resolve(channel);
  }

  /** Closes every channel (their unacked deliveries go back to their queues), then itself. */
  close(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('Connection closed'));
    this.#end(undefined);
    return Promise.resolve();
  }

  /** The broker ends the connection: channels close with `error`, then `ondisconnect`. */
  lose(error: Error): void {
    if (this.closed) return;
    this.#end(error);
    this.ondisconnect?.(error);
  }

  #end(error: Error | undefined): void {
    this.closed = true;
    for (const channel of [...this.channels]) channel.end(error);
    this.core.clientGone(this);
  }

  setBlocked(reason: string): void {
    if (this.closed || this.blocked !== undefined) return;
    this.blocked = reason;
    this.onblocked?.(reason);
  }

  setUnblocked(): void {
    if (this.closed || this.blocked === undefined) return;
    this.blocked = undefined;
    this.onunblocked?.();
  }
}
