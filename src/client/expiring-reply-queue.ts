import { Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { AmqpChannelLike, AmqpClientLike } from '../transport/types.js';
import type { Logger } from '../logger.js';
import { RpcError } from '../errors.js';
import type { PendingCalls } from './pending.js';
import type { ReplyChannel, ReplyMode } from './reply-mode.js';

/**
 * `replyMode: 'expiring-queue'`: a named queue with `x-expires`, the same on every
 * reconnect, so replies sent meanwhile wait in it and the calls keep waiting across a loss.
 * Replies are acked after use: a reply pushed to a dying connection is not lost with it.
 * Deleted when the connection closes, else by the broker once unused for
 * `replyQueueExpiresMs`.
 */
export class ExpiringReplyQueue implements ReplyMode {
  readonly acksReplies = true;
  readonly survivesReconnect = true;
  readonly #userId: string | undefined;
  readonly #expiresMs: number;
  readonly #logger: Logger;
  readonly #pending: PendingCalls;
  /**
   * `rpc.reply.<user>.<122 random bits>`: unique per caller instance, so a restarted process
   * never reads another's replies; the user in the name lets a broker permission limit the
   * queue to its user (docs/security.md). A new name if the queue is ever found taken.
   */
  #name: string;

  constructor(
    userId: string | undefined,
    expiresMs: number,
    logger: Logger,
    pending: PendingCalls,
  ) {
    this.#userId = userId;
    this.#expiresMs = expiresMs;
    this.#logger = logger;
    this.#pending = pending;
    this.#name = expiringQueueName(userId);
  }

  /** The queue's name now. */
  get name(): string {
    return this.#name;
  }

  async open(client: AmqpClientLike): Promise<ReplyChannel> {
    const channel = await client.channel();
    // Named after its user, with a random part; see #claim. Durable because RabbitMQ 4.3
    // refuses non-durable shared queues; classic whatever the vhost's default type, as
    // replicating one process's replies buys nothing (D29).
    const replyTo = await this.#claim(channel);
    return { channel, replyTo, publishes: false };
  }

  /**
   * Declares the queue. Found with a consumer while this caller had none (another
   * connection that learned its name from a request took it while this one reconnected),
   * it is deleted, which also ends that consumer, and a new queue under a new name takes its
   * place. The calls whose replies were to go there fail with UNAVAILABLE (an idempotent
   * one is sent again): their replies may have been read by the other consumer.
   */
  async #claim(channel: AmqpChannelLike): Promise<string> {
    const declare = (name: string) =>
      channel.queueDeclare(
        name,
        { exclusive: false, autoDelete: false, durable: true },
        { 'x-expires': this.#expiresMs, 'x-queue-type': 'classic' },
      );
    const taken = this.#name;
    const { consumerCount } = await declare(taken);
    if (consumerCount === 0) return taken;
    this.#logger.warn(
      { queue: taken, consumers: consumerCount },
      'the expiring reply queue had another consumer: replaced by a new one',
    );
    await channel.queueDelete(taken);
    this.#name = expiringQueueName(this.#userId);
    await declare(this.#name);
    const lost = new RpcError(
      'UNAVAILABLE',
      'another connection consumed the reply queue while this one reconnected; the reply may have been read by it',
    );
    for (const call of this.#pending.values()) {
      if (call.properties.replyTo === taken) this.#pending.settle(call.id, lost);
    }
    return this.#name;
  }

  channelLostError(error: RpcError): RpcError {
    // Not used while the queue outlives its channel; kept for the interface.
    return new RpcError('UNAVAILABLE', error.message, { cause: error });
  }

  /** Deletes the queue now rather than when it expires. */
  async dispose(channel: AmqpChannelLike): Promise<void> {
    await channel.queueDelete(this.#name).catch(() => undefined);
  }
}

/**
 * The name of an expiring reply queue: `rpc.reply.<user>.<uuid>`, or `rpc.reply.<uuid>`
 * without a user (`userId: false`) or with one too long for a queue name (255 bytes).
 */
export function expiringQueueName(userId: string | undefined): string {
  const random = randomUUID();
  if (userId === undefined || Buffer.byteLength(userId) > MAX_USER_IN_QUEUE_NAME_BYTES) {
    return `rpc.reply.${random}`;
  }
  return `rpc.reply.${userId}.${random}`;
}

/** 255 bytes for a queue name, less `rpc.reply.`, the dot and a UUID. */
const MAX_USER_IN_QUEUE_NAME_BYTES = 255 - 10 - 1 - 36;
