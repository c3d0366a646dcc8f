/**
 * The broker side of the in-memory transport: queues, routing through the default
 * exchange, deliveries, requeues, expiry and dead-lettering. It mirrors what RabbitMQ
 * 3.10 does for the part of AMQP 0-9-1 that rabbit-rpc uses; docs/testing.md lists what
 * is and is not covered.
 * @internal
 */
import { randomBytes } from 'node:crypto';
import { setLongTimeout, setTimeoutAt, type LongTimeout } from '../timers.js';
import type { AmqpField, AmqpProperties } from '../transport/types.js';

/** RabbitMQ's Direct Reply-to pseudo-queue. */
export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
const DIRECT_REPLY_PREFIX = `${DIRECT_REPLY_TO}.`;
/** Exchanges every RabbitMQ vhost has; nothing can be bound to them here, so they route nowhere. */
const BUILT_IN_EXCHANGES = new Set(['amq.direct', 'amq.fanout', 'amq.topic', 'amq.headers']);
/** Queue arguments RabbitMQ checks for equivalence when a queue is declared again. */
const CHECKED_ARGUMENTS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-queue-type',
  'x-delivery-limit',
  'x-overflow',
  'x-queue-mode',
];

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

/** Queues, clients and routing of one {@link MemoryBroker}. */
export class BrokerCore<TClient extends CoreClient = CoreClient> {
  readonly queues = new Map<string, MemoryQueue>();
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
      if ((existing.owner !== undefined) !== exclusive) throw locked(name);
      if (existing.durable !== durable) inequivalent(name, 'durable', durable, existing.durable);
      if (existing.autoDelete !== autoDelete) {
        inequivalent(name, 'auto_delete', autoDelete, existing.autoDelete);
      }
      for (const key of CHECKED_ARGUMENTS) {
        if (!sameField(args[key], existing.args[key])) {
          inequivalent(name, key, args[key], existing.args[key]);
        }
      }
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

  enqueue(queue: MemoryQueue, message: StoredMessage): void {
    const ttls = [queue.numberArg('x-message-ttl'), parseExpiration(message.properties.expiration)];
    const ttl = Math.min(...ttls.filter((value) => value !== undefined));
    const expiresAt = Number.isFinite(ttl) ? Date.now() + ttl : undefined;
    queue.messages.push({ ...message, expiresAt });
    this.pump(queue);
  }

  /** Puts messages back at the head of their queue, first delivered first, marked redelivered. */
  requeue(entries: readonly Unacked[]): void {
    const touched = new Set<MemoryQueue>();
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i];
      if (!entry || this.queues.get(entry.queue.name) !== entry.queue) continue;
      const { queue, message } = entry;
      message.redelivered = true;
      if (queue.quorum) {
        message.returns++;
        const limit = queue.numberArg('x-delivery-limit');
        if (limit !== undefined && message.returns > limit) {
          this.deadLetter(queue, message, 'delivery_limit');
          continue;
        }
      }
      queue.messages.unshift(message);
      touched.add(queue);
    }
    for (const queue of touched) this.pump(queue);
  }

  /** Hands messages to consumers with room under their prefetch, round robin. */
  pump(queue: MemoryQueue): void {
    while (queue.messages.length > 0) {
      const consumer = nextReady(queue);
      if (!consumer) break;
      const message = queue.messages.shift();
      if (!message) break;
      if (isExpired(message)) {
        this.deadLetter(queue, message, 'expired');
        continue;
      }
      consumer.channel.deliver(consumer, queue, message);
    }
    this.#watchHead(queue);
  }

  /** Drops expired messages from the head of the queue, as RabbitMQ does. */
  purgeExpired(queue: MemoryQueue): void {
    for (let head = queue.messages[0]; head && isExpired(head); head = queue.messages[0]) {
      queue.messages.shift();
      this.deadLetter(queue, head, 'expired');
    }
    this.#watchHead(queue);
  }

  #watchHead(queue: MemoryQueue): void {
    queue.headTimer?.clear();
    queue.headTimer = undefined;
    const expiresAt = queue.messages[0]?.expiresAt;
    if (expiresAt === undefined || this.queues.get(queue.name) !== queue) return;
    // `expiration` is the publisher's: it may be further ahead than one Node timer waits.
    queue.headTimer = setTimeoutAt(() => this.purgeExpired(queue), expiresAt + 1, {
      unref: true,
    });
  }

  /** To the queue's dead-letter exchange (only the default one is known here), else dropped. */
  deadLetter(queue: MemoryQueue, message: StoredMessage, reason: string): void {
    if (queue.args['x-dead-letter-exchange'] !== '') return;
    const target = queue.args['x-dead-letter-routing-key'];
    const routingKey = typeof target === 'string' ? target : message.routingKey;
    const { expiration, ...properties } = message.properties;
    const death: Record<string, AmqpField> = {
      queue: queue.name,
      reason,
      count: 1,
      exchange: message.exchange,
      'routing-keys': [message.routingKey],
      time: new Date(),
    };
    if (expiration !== undefined) death['original-expiration'] = expiration;
    const earlier = properties.headers?.['x-death'];
    properties.headers = {
      ...properties.headers,
      'x-death': [death, ...(Array.isArray(earlier) ? (earlier as AmqpField[]) : [])],
    };
    const dead = this.queues.get(routingKey);
    if (dead && dead !== queue) {
      this.enqueue(dead, { ...message, properties, exchange: '', routingKey, redelivered: false });
    }
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

function nextReady(queue: MemoryQueue): CoreConsumer | undefined {
  const count = queue.consumers.length;
  for (let i = 0; i < count; i++) {
    const index = (queue.next + i) % count;
    const consumer = queue.consumers[index];
    if (consumer?.hasRoom()) {
      queue.next = (index + 1) % count;
      return consumer;
    }
  }
  return undefined;
}

function isExpired(message: StoredMessage): boolean {
  return message.expiresAt !== undefined && Date.now() > message.expiresAt;
}

function parseExpiration(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Number(value);
  return Number.isInteger(ms) && ms >= 0 ? ms : undefined;
}

function noExchange(exchange: string): ChannelFailure {
  return new ChannelFailure(404, `NOT_FOUND - no exchange '${exchange}' in vhost '/'`);
}

function notFound(queue: string): ChannelFailure {
  return new ChannelFailure(404, `NOT_FOUND - no queue '${queue}' in vhost '/'`);
}

function locked(queue: string): ChannelFailure {
  return new ChannelFailure(
    405,
    `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue}' in vhost '/'. ` +
      'It could be originally declared on another connection or the exclusive property value ' +
      'does not match that of the original declaration.',
  );
}

function inequivalent(queue: string, arg: string, received: unknown, current: unknown): never {
  const show = (value: unknown) => (value === undefined ? 'none' : `'${fieldText(value)}'`);
  throw new ChannelFailure(
    406,
    `PRECONDITION_FAILED - inequivalent arg '${arg}' for queue '${queue}' in vhost '/': ` +
      `received ${show(received)} but current is ${show(current)}`,
  );
}

function sameField(a: AmqpField | undefined, b: AmqpField | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return typeof a === typeof b || (isNumeric(a) && isNumeric(b))
    ? fieldText(a) === fieldText(b)
    : false;
}

/** A header or argument value as text, for comparisons and error messages. */
function fieldText(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    return JSON.stringify(value, (_key, item: unknown) =>
      typeof item === 'bigint' ? item.toString() : item,
    );
  }
  return String(value);
}

function isNumeric(value: unknown): boolean {
  return typeof value === 'number' || typeof value === 'bigint';
}

/** What RabbitMQ refuses when a queue is first declared (the subset that matters here). */
function checkArguments(
  name: string,
  args: Record<string, AmqpField>,
  durable: boolean,
  exclusive: boolean,
): void {
  for (const key of ['x-expires', 'x-message-ttl', 'x-delivery-limit']) {
    const value = args[key];
    if (value === undefined) continue;
    const min = key === 'x-expires' ? 1 : 0;
    if (!isNumeric(value) || Number(value) < min || !Number.isInteger(Number(value))) {
      throw new ChannelFailure(
        406,
        `PRECONDITION_FAILED - invalid arg '${key}' for queue '${name}' in vhost '/': ${fieldText(value)}`,
      );
    }
  }
  const type = args['x-queue-type'];
  if (type !== undefined && type !== 'classic' && type !== 'quorum') {
    throw new ChannelFailure(
      406,
      `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '${name}' in vhost '/': ${fieldText(type)}`,
    );
  }
  if (type === 'quorum' && (exclusive || !durable)) {
    const property = exclusive ? 'exclusive' : 'non-durable';
    throw new ChannelFailure(
      406,
      `PRECONDITION_FAILED - invalid property '${property}' for queue '${name}' in vhost '/'`,
    );
  }
}
