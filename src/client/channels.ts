import type { AmqpChannelLike, AmqpClientLike } from '../transport/types.js';
import { AckBatcher } from '../transport/ack-batch.js';
import { fromAmqpError } from '../transport/errors.js';
import { batchWritesThisTick } from '../transport/amqp-client.js';
import type { Link } from '../transport/link.js';
import type { ResolvedConnectOptions } from '../options/connect.js';
import { RpcError } from '../errors.js';
import type { BatchPeers } from './batch-peers.js';
import { Batcher, type BatchPort } from './batching.js';
import { PayloadLimit } from './payload-limit.js';
import { isBatchable, type PendingCall, type PendingCalls } from './pending.js';
import { Replies, type ReplyAddress } from './replies.js';
import type { ReplyMode } from './reply-mode.js';

/**
 * The caller's two channels: requests are published on one (confirm mode, opened once,
 * replaced after a nack or a channel error; publishes wait at the flow gate), replies are
 * consumed on the other, as the {@link ReplyMode} opens it: a separate channel, so that a
 * channel error caused by one request (a size limit, a permission) fails only the calls it
 * concerns and replies keep coming; the same channel in Direct Reply-to mode.
 */
export class CallerChannels implements BatchPort, ReplyAddress {
  readonly #link: Link;
  readonly #options: ResolvedConnectOptions;
  readonly #pending: PendingCalls;
  readonly #mode: ReplyMode;
  readonly limit: PayloadLimit;
  /** Undefined when batching is off. */
  readonly batcher: Batcher | undefined;
  readonly #replies: Replies;
  /** Requests are published here. */
  #channel: AmqpChannelLike | undefined;
  /** Replies are consumed here (the same channel as #channel in Direct Reply-to mode). */
  #replyChannel: AmqpChannelLike | undefined;
  #replyTo = '';
  #opening: Promise<AmqpChannelLike> | undefined;
  readonly #openPublishChannel = (client: AmqpClientLike) => this.#openPublishChannelOn(client);

  /** `peers`: with negotiated batching (the default, D36), which queues read batches. */
  constructor(
    link: Link,
    options: ResolvedConnectOptions,
    pending: PendingCalls,
    mode: ReplyMode,
    peers: BatchPeers | undefined,
  ) {
    this.#link = link;
    this.#options = options;
    this.#pending = pending;
    this.#mode = mode;
    this.limit = new PayloadLimit(options.maxPayloadBytes);
    this.batcher =
      options.batch === false
        ? undefined
        : new Batcher(options.batch, peers, pending, this, options.userId);
    this.#replies = new Replies(pending, this.batcher, this, options.logger);
  }

  get replyTo(): string {
    return this.#replyTo;
  }

  /**
   * The connection went before the broker confirmed, and replies outlive it: the request
   * may be in its queue, and its reply would wait for the next connection.
   */
  get repliesOutliveConnection(): boolean {
    return !this.#link.client && this.#mode.survivesReconnect;
  }

  /** Publishes `call` at once when a channel is open and writable, else once one is. */
  publishNow(call: PendingCall): void {
    const aside = call.multi?.publishChannel;
    if (aside !== undefined) {
      this.#publishAside(aside, call);
      return;
    }
    const channel = this.#channel;
    if (channel && !channel.closed && !this.#link.flow.blocked) this.#publish(channel, call);
    else this.publishLater(call);
  }

  /** Publishes once a channel exists and the broker accepts publishes, if still pending. */
  publishLater(call: PendingCall): void {
    const attempt = call.retry?.attempts;
    this.#writableChannel().then(
      (channel) => {
        // A later retry of the call supersedes this publish.
        if (this.#pending.isPending(call) && call.retry?.attempts === attempt) {
          this.#publish(channel, call);
        }
      },
      (error: unknown) => this.#pending.settle(call.id, RpcError.from(error, 'UNAVAILABLE')),
    );
  }

  async #writableChannel(): Promise<AmqpChannelLike> {
    await this.#link.flow.wait();
    // A publishing channel the broker closed since the last publish: open another.
    if (this.#channel?.closed) this.dropPublishChannel(this.#channel);
    return this.#channel ?? (await this.open());
  }

  /** Publishes on a channel of the call's own (an internal describe): a refusal closes only that. */
  #publishAside(open: () => Promise<AmqpChannelLike>, call: PendingCall): void {
    // The request names the caller's reply address: its channels are opened first.
    const replies = this.#replyChannel ? Promise.resolve(undefined) : this.open();
    replies.then(open).then(
      (channel) => {
        channel.onReturn = (message) => this.#replies.onReturn(message);
        if (this.#pending.isPending(call)) this.publishOne(channel, call);
      },
      (error: unknown) => this.#pending.settle(call.id, RpcError.from(error, 'UNAVAILABLE')),
    );
  }

  #publish(channel: AmqpChannelLike, call: PendingCall): void {
    if (this.batcher && isBatchable(call)) {
      this.batcher.add(channel, call);
      return;
    }
    this.publishOne(channel, call);
  }

  publishOne(channel: AmqpChannelLike, call: PendingCall): void {
    call.properties.replyTo = this.#replyTo;
    call.published = true;
    batchWritesThisTick(channel.connection);
    // mandatory: an unroutable request comes back as basic.return at once (Replies.onReturn).
    channel
      .basicPublish(call.multi?.exchange ?? '', call.queue, call.body, call.properties, true)
      .catch((error: unknown) => this.#publishFailed(channel, call, error));
  }

  /**
   * A publish failed. On a channel the broker closed (an error caused by this or another
   * request): the call fails with the broker's code; the size limit is learnt if that was
   * it; the next call opens a new publishing channel. On an open channel the broker refused
   * the request (nack): the channel may be stuck (a quorum queue client bound to a dead
   * leader), so it is replaced. Replies keep arriving on the reply channel.
   */
  #publishFailed(channel: AmqpChannelLike, call: PendingCall, error: unknown): void {
    if (this.repliesOutliveConnection) {
      // The connection went before the broker confirmed: the request may be in its queue,
      // and its reply would wait in the reply queue. It stays pending; an idempotent one is
      // also published again (servers answer a duplicate from the cache).
      if (call.retry) {
        const cutOff = new RpcError(
          'UNAVAILABLE',
          'the connection was lost before the broker confirmed the request',
          { cause: error },
        );
        this.#pending.settle(call.id, cutOff);
      }
      return;
    }
    switch (this.limit.learn(error, channel, call.body.length)) {
      case 'other':
        this.#pending.settle(call.id, fromAmqpError(error, `publishing to "${call.queue}" failed`));
        this.dropPublishChannel(channel);
        return;
      case 'culprit':
        this.#pending.settle(call.id, PayloadLimit.refusal(error));
        this.dropPublishChannel(channel);
        return;
      case 'discarded':
        if (this.#pending.isPending(call)) {
          this.dropPublishChannel(channel);
          this.publishLater(call);
        }
        return;
      case 'taken':
        return;
    }
  }

  /** Stops publishing on `channel`; the next call opens a new one. */
  dropPublishChannel(channel: AmqpChannelLike): void {
    if (this.#channel !== channel) return;
    if (channel === this.#replyChannel) {
      // Direct Reply-to: publishing and replies share the channel.
      this.#replyChannelLost(channel, new RpcError('UNAVAILABLE', 'the channel closed'));
      return;
    }
    this.#channel = undefined;
    this.#opening = undefined;
    if (!channel.closed) channel.close().catch(() => undefined);
  }

  /** Opens what is missing of the two channels once; concurrent callers share it. */
  open(): Promise<AmqpChannelLike> {
    this.#opening ??= this.#openChannels().catch((error: unknown) => {
      this.#opening = undefined;
      throw fromAmqpError(error, 'opening a channel failed');
    });
    return this.#opening;
  }

  async #openChannels(): Promise<AmqpChannelLike> {
    const client = await this.#link.ready();
    if (!this.#replyChannel) await this.#openReplyChannel(client);
    if (!this.#channel) this.#channel = await this.#openPublishChannelOn(client);
    return this.#channel;
  }

  async #openPublishChannelOn(client: AmqpClientLike): Promise<AmqpChannelLike> {
    const channel = await client.channel();
    channel.onReturn = (message) => this.#replies.onReturn(message);
    if (this.#options.publisherConfirms) await channel.confirmSelect();
    return channel;
  }

  async #openReplyChannel(client: AmqpClientLike): Promise<void> {
    const { channel, replyTo, publishes } = await this.#mode.open(client, this.#openPublishChannel);
    const replies = this.#replies;
    const acks = this.#mode.acksReplies ? new AckBatcher(channel) : undefined;
    // A reply whose properties do not decode names no call: dropped (rejected by the AMQP
    // client when acked), counted as unmatched.
    channel.onUndecodable = (message) => replies.onUndecodable(message);
    const consumer = await channel.basicConsume(
      replyTo,
      { noAck: acks === undefined, exclusive: true },
      (message) => {
        if (!acks) return replies.onReply(message);
        acks.received(message.deliveryTag);
        replies.onReply(message);
        acks.ack(message.deliveryTag);
      },
    );
    // The broker closing the channel (or cancelling the consumer) ends the replies.
    consumer.wait().then(
      () => undefined,
      (error: unknown) => {
        this.#replyChannelLost(channel, fromAmqpError(error, 'the reply channel closed'));
      },
    );
    this.#replyTo = replyTo;
    this.#replyChannel = channel;
    if (publishes) this.#channel = channel;
  }

  #replyChannelLost(channel: AmqpChannelLike, error: RpcError): void {
    if (this.#replyChannel !== channel) return;
    this.#replyChannel = undefined;
    if (this.#channel === channel) this.#channel = undefined;
    this.#opening = undefined;
    if (!channel.closed) channel.close().catch(() => undefined);
    if (this.#mode.survivesReconnect) {
      // The reply queue outlives the channel: consume it again for the calls still waiting.
      this.#reopenForWaitingCalls();
      return;
    }
    // The reply address went with the channel: the calls waiting for replies cannot get
    // them. The next call opens new channels.
    this.#pending.failAll(this.#mode.channelLostError(error));
  }

  #reopenForWaitingCalls(): void {
    if (this.#pending.size === 0) return;
    this.open().catch((cause: unknown) => {
      this.#pending.failAll(RpcError.from(cause, 'UNAVAILABLE'));
    });
  }

  connectionLost(error: RpcError): void {
    this.#channel = undefined;
    this.#replyChannel = undefined;
    this.#opening = undefined;
    // A reply address that goes with the connection: calls waiting for replies cannot get
    // them. One that survives keeps them for the next connection.
    if (!this.#mode.survivesReconnect) this.#pending.failAll(error);
  }

  connectionRestored(): void {
    // Consume a surviving reply queue again at once if replies may be waiting in it;
    // otherwise the next call opens a channel (and declares a new reply queue) itself.
    if (this.#mode.survivesReconnect) this.#reopenForWaitingCalls();
  }

  /** Forgets the channels; removes a reply queue that would outlive the connection. */
  async dispose(): Promise<void> {
    const channel = this.#replyChannel;
    this.#replyChannel = undefined;
    this.#channel = undefined;
    if (channel && !channel.closed) await this.#mode.dispose(channel);
  }
}
