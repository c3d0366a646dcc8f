/**
 * The broker side of the in-memory transport: queues, routing through the default
 * exchange, deliveries, requeues, expiry and dead-lettering. It mirrors what RabbitMQ
 * 3.10 does for the part of AMQP 0-9-1 that rabbit-rpc uses; docs/testing.md lists what
 * is and is not covered. The shapes are in memory-model.ts, the life of messages in
 * memory-queues.ts, the declare checks and channel errors in memory-rules.ts.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { setLongTimeout } from '../timers.js';
import type { AmqpField, AmqpProperties } from '../transport/types.js';
import {
  ChannelFailure,
  DIRECT_REPLY_TO,
  MemoryQueue,
  type CoreChannel,
  type CoreClient,
  type CoreConsumer,
  type DeclareParams,
  type StoredMessage,
} from './memory-model.js';
import { MemoryQueues } from './memory-queues.js';
import {
  BUILT_IN_EXCHANGES,
  checkArguments,
  checkEquivalent,
  locked,
  noExchange,
  notFound,
} from './memory-rules.js';

const DIRECT_REPLY_PREFIX = `${DIRECT_REPLY_TO}.`;

/** Queues, clients and routing of one {@link MemoryBroker}. */
export class BrokerCore<TClient extends CoreClient = CoreClient> extends MemoryQueues {
  readonly clients = new Set<TClient>();
  /** Direct Reply-to: the token in `amq.rabbitmq.reply-to.<token>` → the channel consuming it. */
  readonly replyChannels = new Map<string, CoreChannel>();
  /** Declared direct exchanges: name → routing key → names of the queues bound with it. */
  readonly exchanges = new Map<string, Map<string, Set<string>>>();

  declareExchange(name: string, type: string, passive: boolean): void {
    if (passive) {
      if (!this.exchanges.has(name) && !BUILT_IN_EXCHANGES.has(name)) throw noExchange(name);
      return;
    }
    if (type !== 'direct') {
      throw new ChannelFailure(
        503,
        `COMMAND_INVALID - the in-memory broker has only direct exchanges`,
      );
    }
    if (name.startsWith('amq.')) {
      throw new ChannelFailure(
        403,
        `ACCESS_REFUSED - exchange name '${name}' contains reserved prefix 'amq.*'`,
      );
    }
    if (!this.exchanges.has(name)) this.exchanges.set(name, new Map());
  }

  bind(client: CoreClient, queueName: string, exchange: string, routingKey: string): void {
    const bindings = this.exchanges.get(exchange);
    if (!bindings) throw noExchange(exchange);
    const queue = this.queues.get(queueName);
    if (!queue) throw notFound(queueName);
    this.#checkOwner(queue, client);
    let queues = bindings.get(routingKey);
    if (!queues) bindings.set(routingKey, (queues = new Set()));
    queues.add(queueName);
  }

  declare(
    client: CoreClient,
    requested: string,
    params: DeclareParams,
    args: Record<string, AmqpField>,
  ): { name: string; messageCount: number; consumerCount: number } {
    const existing = this.queues.get(requested);
    if (params.passive) {
      if (!existing) throw notFound(requested);
      this.#checkOwner(existing, client);
      return this.#declareOk(existing);
    }
    const name = requested === '' ? `amq.gen-${randomBytes(16).toString('base64url')}` : requested;
    if (requested.startsWith('amq.')) {
      throw new ChannelFailure(
        403,
        `ACCESS_REFUSED - queue name '${requested}' contains reserved prefix 'amq.*'`,
      );
    }
    const durable = params.durable ?? true;
    const autoDelete = params.autoDelete ?? false;
    const exclusive = params.exclusive ?? false;
    if (existing) {
      this.#checkOwner(existing, client);
      checkEquivalent(existing, name, { durable, autoDelete, exclusive }, args);
      this.#touch(existing);
      return this.#declareOk(existing);
    }
    checkArguments(name, args, durable, exclusive);
    const queue = new MemoryQueue(name, durable, autoDelete, exclusive ? client : undefined, {
      ...args,
    });
    this.queues.set(name, queue);
    this.#touch(queue);
    return this.#declareOk(queue);
  }

  #declareOk(queue: MemoryQueue) {
    this.purgeExpired(queue);
    return {
      name: queue.name,
      messageCount: queue.messages.length,
      consumerCount: queue.consumers.length,
    };
  }

  #checkOwner(queue: MemoryQueue, client: CoreClient | undefined): void {
    if (queue.owner !== undefined && queue.owner !== client) throw locked(queue.name);
  }

  /** Deletes a queue (by a client, or by the broker when `client` is undefined). */
  deleteQueue(name: string, client?: CoreClient): number {
    const queue = this.queues.get(name);
    if (!queue) return 0;
    if (client) this.#checkOwner(queue, client);
    this.drop(queue);
    return queue.messages.length;
  }

  /** Removes a queue: its messages go, its consumers are cancelled as by basic.cancel. */
  drop(queue: MemoryQueue): void {
    if (this.queues.get(queue.name) !== queue) return;
    this.queues.delete(queue.name);
    for (const bindings of this.exchanges.values()) {
      for (const queues of bindings.values()) queues.delete(queue.name);
    }
    queue.unexpiresTimer?.clear();
    queue.headTimer?.clear();
    for (const consumer of queue.consumers.splice(0)) {
      consumer.channel.consumers.delete(consumer);
      consumer.setClosed(new Error('Consumer cancelled by the server'));
    }
  }

  consume(consumer: CoreConsumer): void {
    const { channel } = consumer;
    if (consumer.queue === DIRECT_REPLY_TO) {
      if (!consumer.noAck) {
        throw new ChannelFailure(406, 'PRECONDITION_FAILED - reply consumer cannot acknowledge');
      }
      channel.replyToken ??= randomBytes(18).toString('base64url');
      channel.replyConsumer = consumer;
      this.replyChannels.set(channel.replyToken, channel);
      return;
    }
    const queue = this.queues.get(consumer.queue);
    if (!queue) throw notFound(consumer.queue);
    this.#checkOwner(queue, channel.client);
    if (
      queue.consumers.some((other) => other.exclusive) ||
      (consumer.exclusive && queue.consumers.length > 0)
    ) {
      throw new ChannelFailure(
        403,
        `ACCESS_REFUSED - queue '${queue.name}' in vhost '/' in exclusive use`,
      );
    }
    queue.consumers.push(consumer);
    this.#touch(queue);
    this.pump(queue);
  }

  /** The consumer is gone (cancelled, or its channel or connection closed). */
  removeConsumer(consumer: CoreConsumer): void {
    const { channel } = consumer;
    if (channel.replyConsumer === consumer) {
      channel.replyConsumer = undefined;
      if (channel.replyToken !== undefined) this.replyChannels.delete(channel.replyToken);
      return;
    }
    const queue = this.queues.get(consumer.queue);
    const index = queue ? queue.consumers.indexOf(consumer) : -1;
    if (!queue || index < 0) return;
    queue.consumers.splice(index, 1);
    if (queue.consumers.length === 0 && queue.autoDelete) this.drop(queue);
    else this.#touch(queue);
  }

  /** Routes a message through the default exchange; throws a ChannelFailure to close the channel. */
  publish(
    channel: CoreChannel | undefined,
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    properties: AmqpProperties,
    mandatory: boolean,
  ): void {
    const bindings = exchange === '' ? undefined : this.exchanges.get(exchange);
    if (exchange !== '' && !bindings && !BUILT_IN_EXCHANGES.has(exchange))
      throw noExchange(exchange);
    if (channel && properties.userId !== undefined && properties.userId !== channel.client.user) {
      throw new ChannelFailure(
        406,
        `PRECONDITION_FAILED - user_id property set to '${properties.userId}' but authenticated user was '${channel.client.user}'`,
      );
    }
    if (properties.replyTo === DIRECT_REPLY_TO) {
      // Direct Reply-to: the reply address names this channel's reply consumer.
      if (!channel?.replyConsumer) {
        throw new ChannelFailure(406, 'PRECONDITION_FAILED - fast reply consumer does not exist');
      }
      properties.replyTo = `${DIRECT_REPLY_PREFIX}${String(channel.replyToken)}`;
    }
    const message: StoredMessage = {
      body,
      properties,
      exchange,
      routingKey,
      expiresAt: undefined,
      redelivered: false,
      returns: 0,
    };
    if (exchange === '' && routingKey.startsWith(DIRECT_REPLY_PREFIX)) {
      const target = this.replyChannels.get(routingKey.slice(DIRECT_REPLY_PREFIX.length));
      const consumer = target?.replyConsumer;
      // Dropped when the caller is gone: Direct Reply-to is at-most-once.
      if (target && consumer) target.deliver(consumer, undefined, message);
      // RabbitMQ 3.10 returns a mandatory reply even when it was delivered (verified).
      if (mandatory) channel?.returnMessage(message, 312, 'NO_ROUTE');
      return;
    }
    const targets: MemoryQueue[] = [];
    if (exchange === '') {
      const queue = this.queues.get(routingKey);
      if (queue) targets.push(queue);
    } else {
      for (const name of bindings?.get(routingKey) ?? []) {
        const queue = this.queues.get(name);
        if (queue) targets.push(queue);
      }
    }
    if (targets.length === 0) {
      if (mandatory) channel?.returnMessage(message, 312, 'NO_ROUTE');
      return;
    }
    for (const queue of targets) this.enqueue(queue, message);
  }

  /** The connection is gone: its exclusive queues go with it. */
  clientGone(client: TClient): void {
    this.clients.delete(client);
    for (const queue of [...this.queues.values()]) {
      if (queue.owner === client) this.drop(queue);
    }
  }

  /** Restarts the x-expires countdown of an unused queue. */
  #touch(queue: MemoryQueue): void {
    queue.unexpiresTimer?.clear();
    queue.unexpiresTimer = undefined;
    const expires = queue.numberArg('x-expires');
    if (expires === undefined || queue.consumers.length > 0) return;
    queue.unexpiresTimer = setLongTimeout(() => this.drop(queue), expires, { unref: true });
  }

  /** Stops every timer and forgets every queue. */
  clear(): void {
    for (const queue of [...this.queues.values()]) this.drop(queue);
  }
}
