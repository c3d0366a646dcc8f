import type { AmqpChannelLike, AmqpClientLike } from '../transport/types.js';
import type { RpcError } from '../errors.js';

/** A channel to consume replies on, and the address requests name in `reply_to`. */
export interface ReplyChannel {
  readonly channel: AmqpChannelLike;
  readonly replyTo: string;
  /** Requests are published on this channel too (Direct Reply-to requires it). */
  readonly publishes: boolean;
}

/**
 * Where replies come back (`ConnectOptions.replyMode`), and what a lost channel or connection
 * does to the calls waiting for them. One strategy per connection: {@link ReplyQueue}
 * (`queue`), {@link DirectReply} (`direct`), {@link ExpiringReplyQueue} (`expiring-queue`).
 */
export interface ReplyMode {
  /**
   * Opens the reply channel and declares (or finds) the reply address; the caller then
   * consumes from it. `openPublishChannel` opens a publishing channel, for a mode that
   * consumes where it publishes.
   */
  open(
    client: AmqpClientLike,
    openPublishChannel: (client: AmqpClientLike) => Promise<AmqpChannelLike>,
  ): Promise<ReplyChannel>;
  /**
   * Replies are acked after use (a reply pushed to a dying connection is then not lost);
   * otherwise consumed with no-ack.
   */
  readonly acksReplies: boolean;
  /**
   * The reply address outlives its channel and the connection: calls keep waiting across a
   * channel loss or a reconnect, and their replies are consumed again. Otherwise the calls
   * waiting for replies fail when the reply channel goes.
   */
  readonly survivesReconnect: boolean;
  /** What the calls waiting for replies fail with when the reply channel closed with `error`. */
  channelLostError(error: RpcError): RpcError;
  /** Removes the reply address, if it outlives the connection, when the caller closes. */
  dispose(channel: AmqpChannelLike): Promise<void>;
}
