import type {
  AmqpChannelLike,
  AmqpField,
  AmqpMessageLike,
  AmqpProperties,
} from '../transport/types.js';
import type { AckBatcher } from '../transport/ack-batch.js';
import type { FlowGate } from '../transport/flow.js';
import { batchWritesThisTick } from '../transport/amqp-client.js';
import type { EncodedBody } from '../protocol/codec.js';
import { STREAM_HEADER } from '../protocol/names.js';
import type { Counters } from './stats.js';

/**
 * Sends a server's replies and settles its deliveries: the reply goes out on the channel
 * the request came from, then the delivery is acked (or dead-lettered, when poison), so
 * both go in the same socket write.
 */
export class Responder {
  constructor(
    private readonly flow: FlowGate,
    private readonly counters: Counters,
    /** Whether poison requests are dead-lettered rather than acked. */
    private readonly deadLetter: boolean,
  ) {}

  /** The broker blocks publishes now: no reply can go out in this tick. */
  get blocked(): boolean {
    return this.flow.blocked;
  }

  /**
   * Publishes the reply on the channel the request came from (the caller acks or nacks
   * right after, in the same socket write); a request without reply_to gets no reply.
   * When that channel is gone the delivery is void (the broker has requeued it): nothing
   * is sent, and no stale delivery tag is acked. Resolves true when the reply went out
   * (or none was wanted).
   */
  async reply(
    channel: AmqpChannelLike,
    message: AmqpMessageLike,
    reply: EncodedBody,
    headers: Record<string, AmqpField> | undefined,
    answers = 1,
  ): Promise<boolean> {
    if (this.flow.blocked && message.properties.replyTo) {
      // Hold the request (and its prefetch slot) until the broker accepts publishes again.
      await this.flow.wait();
    }
    return this.publish(channel, message, reply, headers, answers);
  }

  /** Publishes a reply now; false when the channel is gone (the request was requeued). */
  publish(
    channel: AmqpChannelLike,
    message: AmqpMessageLike,
    reply: EncodedBody,
    headers: Record<string, AmqpField> | undefined,
    /** How many calls the message answers (a batch reply answers several). */
    answers = 1,
  ): boolean {
    if (isClosed(channel)) return false;
    const { replyTo, correlationId } = message.properties;
    if (replyTo) {
      const properties: AmqpProperties = { contentType: reply.contentType };
      if (correlationId !== undefined) properties.correlationId = correlationId;
      if (headers) properties.headers = headers;
      batchWritesThisTick(channel.connection);
      // A failed publish means the channel closed: the request was not acked, so it is requeued.
      channel.basicPublish('', replyTo, reply.body, properties).catch(() => undefined);
    }
    if (headers?.[STREAM_HEADER] !== 'item') this.counters.replied += answers;
    return true;
  }

  /**
   * Answered; a poison request is kept for inspection in the dead-letter exchange, if the
   * queue has one. Never requeued.
   */
  settle(acks: AckBatcher, message: AmqpMessageLike, poison: boolean): void {
    if (poison && this.deadLetter) acks.reject(message.deliveryTag);
    else acks.ack(message.deliveryTag);
  }
}

/** Reads `closed` afresh: it changes while a handler awaits. */
export function isClosed(channel: AmqpChannelLike): boolean {
  return channel.closed;
}
