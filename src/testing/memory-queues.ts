/**
 * The queues of the in-memory broker and the life of their messages: enqueued (with their
 * TTL), handed to consumers round robin under their prefetch, requeued, expired and
 * dead-lettered through the default exchange.
 * @internal
 */
import { setTimeoutAt } from '../timers.js';
import type { AmqpField } from '../transport/types.js';
import type { CoreConsumer, MemoryQueue, StoredMessage, Unacked } from './memory-model.js';

/** The queues of one broker, by name, and what happens to their messages. */
export class MemoryQueues {
  readonly queues = new Map<string, MemoryQueue>();

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
