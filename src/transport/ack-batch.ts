import type { AmqpChannelLike } from './types.js';
import { batchWritesThisTick } from './amqp-client.js';

/**
 * Acks a consuming channel's deliveries in batches: the acks asked for in one tick go out
 * as a single `basic.ack` with `multiple` when no delivery below the highest of them is
 * still being handled (a multiple ack would settle it too early), else one by one. Nacks
 * are never batched: they go out at once, so a later multiple ack cannot cover them.
 *
 * Whoever closes the channel must {@link flush} first: the acks of this tick are written
 * only when the tick ends, and a channel closed before that would drop them, so the broker
 * would requeue requests that were already answered.
 */
export class AckBatcher {
  readonly channel: AmqpChannelLike;
  /** Delivery tags received and not yet acked or nacked, in the order received. */
  readonly #unsettled = new Set<number>();
  #toAck: number[] = [];
  readonly #flush = () => this.#send();
  /** Called each time the last unsettled delivery is acked or rejected. */
  readonly #onSettled: (() => void) | undefined;

  constructor(channel: AmqpChannelLike, onSettled?: () => void) {
    this.channel = channel;
    this.#onSettled = onSettled;
  }

  /** Deliveries received and neither acked nor rejected yet. */
  get unsettled(): number {
    return this.#unsettled.size;
  }

  received(deliveryTag: number): void {
    this.#unsettled.add(deliveryTag);
  }

  ack(deliveryTag: number): void {
    if (!this.#unsettled.delete(deliveryTag) || this.channel.closed) return;
    this.#toAck.push(deliveryTag);
    if (this.#toAck.length === 1) batchWritesThisTick(this.channel.connection, this.#flush);
    if (this.#unsettled.size === 0) this.#onSettled?.();
  }

  /** Rejects without requeueing (dead-letters, when the queue has a dead-letter exchange). */
  reject(deliveryTag: number): void {
    if (!this.#unsettled.delete(deliveryTag) || this.channel.closed) return;
    this.channel.basicNack(deliveryTag, false).catch(() => undefined);
    if (this.#unsettled.size === 0) this.#onSettled?.();
  }

  /**
   * Writes the acks gathered in this tick now rather than at its end: before the channel
   * is closed, so that they reach the broker ahead of the close (frames on one channel are
   * handled in order).
   */
  flush(): void {
    this.#send();
  }

  #send(): void {
    const tags = this.#toAck;
    if (tags.length === 0) return;
    this.#toAck = [];
    if (this.channel.closed) return;
    const only = tags.length === 1 ? tags[0] : undefined;
    if (only !== undefined) {
      // The tick of a lone request: nothing to look up.
      this.channel.basicAck(only, false).catch(() => undefined);
      return;
    }
    let highest = 0;
    for (const tag of tags) if (tag > highest) highest = tag;
    // Tags grow with each delivery and a Set keeps insertion order: the first is the lowest.
    const lowestUnsettled = this.#unsettled.values().next().value ?? Infinity;
    if (lowestUnsettled > highest) {
      this.channel.basicAck(highest, true).catch(() => undefined);
      return;
    }
    for (const tag of tags) this.channel.basicAck(tag, false).catch(() => undefined);
  }
}
