import type { AmqpChannelLike, AmqpClientLike } from '../transport/types.js';
import type { RpcError } from '../errors.js';
import { DIRECT_REPLY_QUEUE } from '../protocol/names.js';
import type { ReplyChannel, ReplyMode } from './reply-mode.js';

/**
 * `replyMode: 'direct'`: RabbitMQ's Direct Reply-to, which requires consuming (no-ack)
 * before publishing, on the publishing channel. Replies go with that channel: its error is
 * the waiting calls' own (they were published on it).
 */
export class DirectReply implements ReplyMode {
  readonly acksReplies = false;
  readonly survivesReconnect = false;

  async open(
    client: AmqpClientLike,
    openPublishChannel: (client: AmqpClientLike) => Promise<AmqpChannelLike>,
  ): Promise<ReplyChannel> {
    const channel = await openPublishChannel(client);
    return { channel, replyTo: DIRECT_REPLY_QUEUE, publishes: true };
  }

  channelLostError(error: RpcError): RpcError {
    return error;
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}
