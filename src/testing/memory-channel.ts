/**
 * A channel of the in-memory transport, shaped like @cloudamqp/amqp-client's: promises,
 * error messages ending in "(code)", deliveries handed over in a later macrotask.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import type {
  AmqpChannelLike,
  AmqpConsumerLike,
  AmqpField,
  AmqpMessageLike,
  AmqpProperties,
} from '../transport/types.js';
import type { BrokerCore } from './memory-core.js';
import { MemoryConsumer } from './memory-consumer.js';
import {
  ChannelFailure,
  type CoreClient,
  type DeclareParams,
  type MemoryQueue,
  type StoredMessage,
  type Unacked,
} from './memory-model.js';

/** A delivered or returned message, as the AMQP library would hand it over. */
interface MemoryMessage extends AmqpMessageLike {
  readonly exchange: string;
  readonly routingKey: string;
  readonly consumerTag?: string;
}

/**
 * What a channel needs of its connection (memory-client.ts implements it): declared here so
 * that the channel does not import the client, which imports the channel.
 */
export interface ChannelClient extends CoreClient {
  readonly core: BrokerCore;
  readonly blocked: string | undefined;
  readonly channels: Set<MemoryChannel>;
}

export class MemoryChannel implements AmqpChannelLike {
  closed = false;
  readonly consumers = new Set<MemoryConsumer>();
  readonly unacked = new Map<number, Unacked>();
  /** basic.qos: the prefetch of consumers started after it. */
  prefetch = 0;
  /** Direct Reply-to: this channel's token and consumer, once it consumes the pseudo-queue. */
  replyToken: string | undefined;
  replyConsumer: MemoryConsumer | undefined;
  #nextTag = 1;
  #confirming = false;
  #outbox: Array<[MemoryConsumer, MemoryMessage]> = [];

  constructor(
    readonly client: ChannelClient,
    readonly id: number,
  ) {}

  get connection(): ChannelClient {
    return this.client;
  }

  get #core(): BrokerCore {
    return this.client.core;
  }

  /** Replaced by users of the channel; by default returned messages are dropped. */
  onReturn: (message: AmqpMessageLike) => void = () => undefined;

  queueDeclare(
    name: string,
    params: DeclareParams,
    args: Record<string, AmqpField> = {},
  ): Promise<{ name: string; messageCount: number; consumerCount: number }> {
    return this.#rpc(() => this.#core.declare(this.client, name, params, args));
  }

  queueDelete(name: string): Promise<{ messageCount: number }> {
    return this.#rpc(() => ({ messageCount: this.#core.deleteQueue(name, this.client) }));
  }

  exchangeDeclare(
    name: string,
    type: 'direct',
    params: { durable?: boolean; autoDelete?: boolean; passive?: boolean },
  ): Promise<void> {
    return this.#rpc(() => {
      this.#core.declareExchange(name, type, params.passive ?? false);
    });
  }

  queueBind(queue: string, exchange: string, routingKey: string): Promise<void> {
    return this.#rpc(() => {
      this.#core.bind(this.client, queue, exchange, routingKey);
    });
  }

  basicQos(prefetchCount: number): Promise<void> {
    return this.#rpc(() => {
      this.prefetch = prefetchCount;
    });
  }

  basicConsume(
    queue: string,
    params: { noAck?: boolean; exclusive?: boolean },
    callback: (message: AmqpMessageLike) => void,
  ): Promise<AmqpConsumerLike> {
    return this.#rpc(() => {
      const tag = `amq.ctag-${randomBytes(16).toString('base64url')}`;
      const consumer = new MemoryConsumer(
        this,
        queue,
        tag,
        params.noAck ?? true, // the library's default
        params.exclusive ?? false,
        this.prefetch,
        callback,
      );
      this.consumers.add(consumer);
      try {
        this.#core.consume(consumer);
      } catch (error) {
        this.consumers.delete(consumer);
        throw error;
      }
      return consumer;
    });
  }

  basicPublish(
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: AmqpProperties,
    mandatory = false,
  ): Promise<unknown> {
    if (this.closed) return rejectClosed();
    if (this.client.blocked !== undefined) {
      return Promise.reject(new Error(`Connection blocked by server: ${this.client.blocked}`));
    }
    // Copies: the publisher may reuse its buffer and objects the moment this returns.
    const copy = new Uint8Array(body);
    const props = structuredClone(properties);
    const publish = () => {
      this.#core.publish(this, exchange, routingKey, copy, props, mandatory);
    };
    // In confirm mode, as in the library, a publish the broker closed the channel over
    // (a forged user_id, an unknown exchange) rejects with the channel's error.
    return this.#confirming ? this.#rpc(publish) : this.#send(publish);
  }

  /** Confirm mode: publishes settle once the broker has taken them, or reject. */
  confirmSelect(): Promise<void> {
    if (this.closed) return rejectClosed();
    this.#confirming = true;
    return Promise.resolve();
  }

  /** Acks one delivery, or with `multiple` every one up to `deliveryTag` (0: all). */
  basicAck(deliveryTag: number, multiple = false): Promise<void> {
    return this.#send(() => {
      const tags = multiple
        ? [...this.unacked.keys()].filter((tag) => deliveryTag === 0 || tag <= deliveryTag)
        : [deliveryTag];
      if (multiple && deliveryTag !== 0 && !this.unacked.has(deliveryTag)) this.#take(deliveryTag);
      const queues = new Set(tags.map((tag) => this.#take(tag).queue));
      for (const queue of queues) this.#core.pump(queue);
    });
  }

  basicNack(deliveryTag: number, requeue: boolean): Promise<void> {
    return this.#send(() => {
      const entry = this.#take(deliveryTag);
      if (requeue) this.#core.requeue([entry]);
      else this.#core.deadLetter(entry.queue, entry.message, 'rejected');
      this.#core.pump(entry.queue);
    });
  }

  #take(deliveryTag: number): Unacked {
    const entry = this.unacked.get(deliveryTag);
    if (!entry) {
      throw new ChannelFailure(406, `PRECONDITION_FAILED - unknown delivery tag ${deliveryTag}`);
    }
    this.unacked.delete(deliveryTag);
    entry.consumer.unacked--;
    return entry;
  }

  close(): Promise<void> {
    if (this.closed) return rejectClosed();
    this.end(undefined);
    return Promise.resolve();
  }

  /**
   * Closes the channel: by the client (`error` undefined: consumers' `wait()` resolves) or
   * by the broker (`error`: it rejects). Unacked deliveries go back to their queues.
   */
  end(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.client.channels.delete(this);
    for (const consumer of this.consumers) {
      this.#core.removeConsumer(consumer);
      consumer.setClosed(error);
    }
    this.consumers.clear();
    this.#outbox = [];
    const unacked = [...this.unacked.values()];
    this.unacked.clear();
    this.#core.requeue(unacked);
  }

  /** Broker side: a message for `consumer`, handed to its callback in a later macrotask. */
  deliver(consumer: MemoryConsumer, queue: MemoryQueue | undefined, message: StoredMessage): void {
    const deliveryTag = this.#nextTag++;
    if (!consumer.noAck && queue) {
      this.unacked.set(deliveryTag, { queue, message, consumer });
      consumer.unacked++;
    }
    const properties = structuredClone(message.properties);
    if (queue?.quorum && message.returns > 0) {
      properties.headers = { ...properties.headers, 'x-delivery-count': message.returns };
    }
    this.#post(consumer, {
      body: new Uint8Array(message.body),
      properties,
      deliveryTag,
      redelivered: message.redelivered,
      exchange: message.exchange,
      routingKey: message.routingKey,
      consumerTag: consumer.tag,
    });
  }

  #post(consumer: MemoryConsumer, message: MemoryMessage): void {
    this.#outbox.push([consumer, message]);
    if (this.#outbox.length === 1) setImmediate(() => this.#flush());
  }

  #flush(): void {
    const batch = this.#outbox;
    this.#outbox = [];
    for (const [consumer, message] of batch) {
      // Like the library: a delivery for a consumer cancelled meanwhile is not handed over
      // (it stays unacked on the channel until the channel closes).
      if (!this.closed && consumer.active) consumer.callback(message);
    }
  }

  /** Broker side: basic.return of a mandatory message nothing could take. */
  returnMessage(message: StoredMessage, replyCode: number, replyText: string): void {
    const returned: MemoryMessage = {
      body: new Uint8Array(message.body),
      properties: structuredClone(message.properties),
      deliveryTag: 0,
      redelivered: false,
      exchange: message.exchange,
      routingKey: message.routingKey,
      replyCode,
      replyText,
    };
    setImmediate(() => {
      if (!this.closed) this.onReturn(returned);
    });
  }

  /** A method with a reply: a channel error closes the channel and rejects it. */
  #rpc<T>(operation: () => T): Promise<T> {
    if (this.closed) return rejectClosed();
    try {
      return Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(this.#fail(error));
    }
  }

  /** A method without a reply (publish, ack): it resolves; a channel error closes the channel. */
  #send(operation: () => void): Promise<void> {
    if (this.closed) return rejectClosed();
    try {
      operation();
    } catch (error) {
      this.#fail(error);
    }
    return Promise.resolve();
  }

  #fail(error: unknown): Error {
    if (!(error instanceof ChannelFailure)) {
      return error instanceof Error ? error : new Error(String(error));
    }
    const closing = new Error(`channel ${this.id} closed: ${error.text} (${error.code})`);
    this.end(closing);
    return closing;
  }
}

function rejectClosed(): Promise<never> {
  return Promise.reject(new Error('Channel is closed'));
}
