import type { AmqpClientLike } from '../transport/types.js';
import { RpcError } from '../errors.js';
import type { ReplyChannel, ReplyMode } from './reply-mode.js';

/**
 * `replyMode: 'queue'` (the default): an exclusive, server-named queue on a channel of its
 * own. It dies with the connection, and with its channel: the calls waiting for replies
 * then fail with UNAVAILABLE.
 */
export class ReplyQueue implements ReplyMode {
  readonly acksReplies = false;
  readonly survivesReconnect = false;

  async open(client: AmqpClientLike): Promise<ReplyChannel> {
    const channel = await client.channel();
    const queue = await channel.queueDeclare('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
    });
    return { channel, replyTo: queue.name, publishes: false };
  }

  channelLostError(error: RpcError): RpcError {
    return new RpcError('UNAVAILABLE', error.message, { cause: error });
  }

  dispose(): Promise<void> {
    return Promise.resolve();
  }
}
