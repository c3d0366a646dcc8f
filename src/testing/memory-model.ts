/**
 * The shapes the in-memory broker is made of: a queue and its messages, and what the core
 * needs of the client side's channels and consumers. memory-client.ts, memory-channel.ts and
 * memory-consumer.ts implement those; declared here so that the core does not import the
 * client side, which imports the core.
 * @internal
 */
import type { LongTimeout } from '../timers.js';
import type { AmqpField, AmqpProperties } from '../transport/types.js';

/** RabbitMQ's Direct Reply-to pseudo-queue. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

/**
 * What the core needs of the client side (memory-client.ts implements it): declared here so
 * that the core does not import the client, which imports the core.
 */
export interface CoreClient {
  readonly user: string;
}

/** A channel as the core sees it. */
export interface CoreChannel {
  readonly client: CoreClient;
  readonly consumers: Set<CoreConsumer>;
  replyToken: string | undefined;
  replyConsumer: CoreConsumer | undefined;
  deliver(consumer: CoreConsumer, queue: MemoryQueue | undefined, message: StoredMessage): void;
  returnMessage(message: StoredMessage, replyCode: number, replyText: string): void;
}

/** A consumer as the core sees it. */
export interface CoreConsumer {
  readonly channel: CoreChannel;
  readonly queue: string;
  readonly noAck: boolean;
  readonly exclusive: boolean;
  /** Deliveries to it not yet acked. */
  unacked: number;
  hasRoom(): boolean;
  setClosed(error: Error | undefined): void;
}

/** A channel-level error: the broker closes the channel with `code` and `text`. */
export class ChannelFailure extends Error {
  constructor(
    readonly code: number,
    readonly text: string,
  ) {
    super(`${text} (${code})`);
  }
}

/** A message held by a queue (or by a channel until it is acked). */
export interface StoredMessage {
  readonly body: Uint8Array;
  readonly properties: AmqpProperties;
  readonly exchange: string;
  readonly routingKey: string;
  /** Date.now() after which it is dropped instead of delivered (expiration, x-message-ttl). */
  readonly expiresAt: number | undefined;
  redelivered: boolean;
  /** Times it went back to a quorum queue (x-delivery-count). */
  returns: number;
}

/** A delivery awaiting its ack on a channel. */
export interface Unacked {
  readonly queue: MemoryQueue;
  readonly message: StoredMessage;
  readonly consumer: CoreConsumer;
}

export interface DeclareParams {
  durable?: boolean;
  autoDelete?: boolean;
  exclusive?: boolean;
  passive?: boolean;
}

export class MemoryQueue {
  readonly messages: StoredMessage[] = [];
  readonly consumers: CoreConsumer[] = [];
  /** Round-robin position among the consumers. */
  next = 0;
  unexpiresTimer: LongTimeout | undefined;
  headTimer: LongTimeout | undefined;

  constructor(
    readonly name: string,
    readonly durable: boolean,
    readonly autoDelete: boolean,
    /** The connection of an exclusive queue. */
    readonly owner: CoreClient | undefined,
    readonly args: Readonly<Record<string, AmqpField>>,
  ) {}

  get quorum(): boolean {
    return this.args['x-queue-type'] === 'quorum';
  }

  numberArg(name: string): number | undefined {
    const value = this.args[name];
    return typeof value === 'number' || typeof value === 'bigint' ? Number(value) : undefined;
  }
}
