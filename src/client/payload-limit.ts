import type { AmqpChannelLike } from '../transport/types.js';
import { brokerSizeLimit } from '../transport/errors.js';
import { messageOf } from '../protocol/codec.js';
import { RpcError } from '../errors.js';

/**
 * What a failed publish says about the size limit: not a size error (`other`); the request
 * over the broker's limit (`culprit`); a request published after the culprit on the same
 * channel, discarded by the broker, safe to send again (`discarded`); or one before it,
 * taken by the broker, whose reply will come (`taken`).
 */
export type SizeVerdict = 'other' | 'culprit' | 'discarded' | 'taken';

/**
 * The largest request body the caller publishes: `maxPayloadBytes`, lowered to the
 * broker's own `max_message_size` once a publish has broken that.
 */
export class PayloadLimit {
  #maxBytes: number;
  /** Publishing channels on which the request that broke the size limit was identified. */
  readonly #culpritSeenOn = new WeakSet<AmqpChannelLike>();

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Refuses a body over the limit with RESOURCE_EXHAUSTED. */
  check(bytes: number): void {
    if (bytes > this.#maxBytes) {
      throw new RpcError(
        'RESOURCE_EXHAUSTED',
        `request of ${bytes} bytes exceeds maxPayloadBytes (${this.#maxBytes})`,
      );
    }
  }

  /**
   * Learns from a publish of `bytes` on `channel` that failed with `error`. A request over
   * the broker's max_message_size closes the channel; the library then fails every
   * unconfirmed publish of the channel, in publish order, and only the oversize one is at
   * fault. Those before it were taken (their replies will come); those after it were
   * discarded by the broker, so sending them again cannot duplicate them.
   */
  learn(error: unknown, channel: AmqpChannelLike, bytes: number): SizeVerdict {
    const limit = brokerSizeLimit(error);
    if (limit === undefined) return 'other';
    this.#maxBytes = Math.min(this.#maxBytes, limit);
    if (bytes > limit) {
      this.#culpritSeenOn.add(channel);
      return 'culprit';
    }
    return this.#culpritSeenOn.has(channel) ? 'discarded' : 'taken';
  }

  /** The error of the request the broker refused as too large. */
  static refusal(error: unknown): RpcError {
    return new RpcError(
      'RESOURCE_EXHAUSTED',
      `the broker refused the request: ${messageOf(error)}`,
    );
  }
}
