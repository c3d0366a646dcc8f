import { Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type {
  AmqpChannelLike,
  AmqpClientLike,
  AmqpMessageLike,
  AmqpProperties,
} from '../transport/types.js';
import type { ControlPlane } from '../control/control-plane.js';
import { AckBatcher } from '../transport/ack-batch.js';
import { brokerSizeLimit, fromAmqpError } from '../transport/errors.js';
import { batchWritesThisTick } from '../transport/amqp-client.js';
import { encodeBody, jsonText, messageOf, type EncodedBody } from '../protocol/codec.js';
import { BodyPool, type PooledBody } from './body-pool.js';
import { RpcError, type RpcErrorCode } from '../errors.js';
import type { Link, LinkParticipant } from '../transport/link.js';
import { checkQueueName, resolveTimeoutMs, type CallOptions } from '../options/call.js';
import { type BatchOptions, type ResolvedConnectOptions } from '../options/connect.js';
import { DEADLINE_HEADER, DIRECT_REPLY_QUEUE, NO_ROUTE } from '../protocol/names.js';
import { isRetryable, RetryState } from './retry.js';
import { BATCH_CONTENT_TYPE, batchBody, readReplyBatch, requestEntry } from '../protocol/batch.js';
import { CONTENT_TYPE_JSON } from '../protocol/names.js';
import { decodeReplyOutcome } from '../protocol/error-reply.js';
import { MORE, type MultiReply } from './multi-reply.js';

/** One call waiting for its reply. A class, not a closure, to keep per-call cost low. */
class PendingCall {
  timer: NodeJS.Timeout | undefined;
  onAbort: (() => void) | undefined;
  /** The request went out: the server may be running it (worth a cancel). */
  published = false;
  /** Set for idempotent calls only: they are published again on UNAVAILABLE. */
  retry: RetryState | undefined;
  /** With batching on: the call as a batch entry, when it may travel in a batch. */
  entry: string | undefined;
  /** The batch it was sent in, if it was. */
  batch: SentBatch | undefined;
  /** Set when `body` lives in a pooled buffer, given back when the call settles. */
  pooled: PooledBody | undefined;
  constructor(
    readonly id: string,
    readonly queue: string,
    readonly body: Uint8Array,
    readonly properties: AmqpProperties,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: RpcError) => void,
    readonly signal: AbortSignal | undefined,
    readonly multi: MultiReply | undefined,
  ) {}
}

/** A batch published and not yet fully answered: its calls, by correlation id. */
interface SentBatch {
  readonly id: string;
  readonly callIds: readonly string[];
  /** Calls of the batch still pending; the batch is forgotten at 0. */
  unsettled: number;
}

/** Calls to one queue waiting for the end of the tick, to go out as one batch. */
interface OpenBatch {
  readonly channel: AmqpChannelLike;
  readonly calls: PendingCall[];
  bytes: number;
}

/** Counters kept by the calling side; {@link RpcConnection.stats} returns a copy. */
export interface CallerStats {
  /** Calls made so far (including those refused before publishing). */
  calls: number;
  /** Calls that failed, by error code. */
  errors: Partial<Record<RpcErrorCode, number>>;
  /** Calls waiting for a reply right now. */
  pending: number;
  /**
   * Replies that matched no pending call (late after a timeout, duplicated, or foreign),
   * including replies whose AMQP properties could not be decoded (dropped unread).
   */
  unmatchedReplies: number;
  /** Times an idempotent call was published again after an UNAVAILABLE failure. */
  retries: number;
}

/**
 * The calling side of a connection: a publishing channel, a reply channel with one reply
 * consumer, and a map of pending calls keyed by correlation id. Every way a call ends
 * deletes its entry.
 */
export class Caller implements LinkParticipant {
  readonly #pending = new Map<string, PendingCall>();
  readonly #link: Link;
  readonly #options: ResolvedConnectOptions;
  #unmatchedReplies = 0;
  #calls = 0;
  #retries = 0;
  /** The configured limit, lowered to the broker's own if a publish ever exceeds that. */
  #maxPayloadBytes: number;
  readonly #errors: Partial<Record<RpcErrorCode, number>> = {};
  /** Requests are published here. */
  #channel: AmqpChannelLike | undefined;
  /**
   * Replies are consumed here: a separate channel, so that a channel error caused by one
   * request (a size limit, a permission) fails only the calls it concerns, and replies
   * keep coming. The same channel in Direct Reply-to mode, which requires it.
   */
  #replyChannel: AmqpChannelLike | undefined;
  /** Publishing channels on which the request that broke the size limit was identified. */
  readonly #culpritSeenOn = new WeakSet<AmqpChannelLike>();
  #replyTo = '';
  #opening: Promise<AmqpChannelLike> | undefined;
  #closedWith: RpcError | undefined;
  /**
   * `rpc.reply.<user>.<122 random bits>`: unique per caller instance, so a restarted process
   * never reads another's replies; the user in the name lets a broker permission limit the
   * queue to its user (docs/security.md). A new name if the queue is ever found taken.
   */
  #expiringQueueName: string;

  readonly #control: ControlPlane;
  /** Batching options; undefined when batching is off. */
  readonly #batching: Required<BatchOptions> | undefined;
  /** Batches being filled in this tick, by queue. */
  readonly #openBatches = new Map<string, OpenBatch>();
  /** Batches sent, by their correlation id: how replies, returns and failures find their calls. */
  readonly #sentBatches = new Map<string, SentBatch>();
  /** Buffers for large request bodies, reused from call to call. */
  readonly #bodies = new BodyPool();

  constructor(link: Link, options: ResolvedConnectOptions, control: ControlPlane) {
    this.#link = link;
    this.#options = options;
    this.#control = control;
    this.#batching = options.batch === false ? undefined : options.batch;
    this.#maxPayloadBytes = options.maxPayloadBytes;
    this.#expiringQueueName = expiringQueueName(options.userId);
    link.join(this);
  }

  get stats(): CallerStats {
    return {
      calls: this.#calls,
      errors: { ...this.#errors },
      pending: this.#pending.size,
      unmatchedReplies: this.#unmatchedReplies,
      retries: this.#retries,
    };
  }

  /** Publishes a request and resolves with the decoded reply, or rejects with an RpcError. */
  call(
    queue: string,
    payload: unknown,
    options: CallOptions = {},
    method?: string,
    multi?: MultiReply,
  ): Promise<unknown> {
    this.#calls++;
    let timeoutMs: number;
    let body: Uint8Array;
    let properties: AmqpProperties;
    let deadline: number;
    let pooled: PooledBody | undefined;
    // Everything that can fail synchronously fails here, before anything is published.
    try {
      checkQueueName(queue);
      timeoutMs = resolveTimeoutMs(options.timeoutMs, this.#options.defaultTimeoutMs);
      if (options.signal?.aborted) throw cancelled(options.signal);
      if (this.#closedWith) throw this.#closedWith;
      if (options.headers) checkHeaders(options.headers);
      let encoded: EncodedBody;
      if (payload instanceof Uint8Array) encoded = encodeBody(payload, 'INVALID_ARGUMENT');
      else {
        const json = jsonText(payload, 'INVALID_ARGUMENT');
        pooled = this.#bodies.take(json);
        encoded = { body: pooled?.bytes ?? Buffer.from(json), contentType: CONTENT_TYPE_JSON };
      }
      body = encoded.body;
      if (body.length > this.#maxPayloadBytes) {
        throw new RpcError(
          'RESOURCE_EXHAUSTED',
          `request of ${body.length} bytes exceeds maxPayloadBytes (${this.#maxPayloadBytes})`,
        );
      }
      deadline = Date.now() + timeoutMs;
      properties = {
        contentType: encoded.contentType,
        expiration: String(timeoutMs),
        headers:
          options.headers || multi?.headers
            ? { ...options.headers, ...multi?.headers, [DEADLINE_HEADER]: deadline }
            : { [DEADLINE_HEADER]: deadline },
      };
      // The method name of a service call travels in the AMQP `type` property.
      if (method !== undefined) properties.type = method;
      // Checked by the broker against the login: servers can trust it (ctx.userId).
      if (this.#options.userId !== undefined) properties.userId = this.#options.userId;
    } catch (error) {
      return Promise.reject(this.#failed(RpcError.from(error, 'INTERNAL')));
    }
    return new Promise<unknown>((resolve, reject) => {
      // 122 random bits: a server learns the ids of the calls it gets and nothing about the
      // caller's others, so it cannot answer, cancel or credit those (docs/security.md).
      // randomUUID draws from a cached entropy pool: about 0.3 µs per call.
      const id = randomUUID();
      // Also the request's stable id for deduplication (ctx.messageId). An idempotent call
      // keeps it across its retries and sends it as message_id, the key of servers' caches.
      properties.correlationId = id;
      const call = new PendingCall(
        id,
        queue,
        body,
        properties,
        resolve,
        reject,
        options.signal,
        multi,
      );
      call.pooled = pooled;
      // Streams and broadcasts are never retried: items or replies already taken would repeat.
      if (options.idempotent === true && !multi) {
        properties.messageId = id;
        call.retry = new RetryState(deadline);
      } else if (
        this.#batching &&
        !multi &&
        properties.contentType === CONTENT_TYPE_JSON &&
        body.length <= Math.min(this.#batching.maxBytes / 2, MAX_BATCHED_REQUEST_BYTES)
      ) {
        call.entry = requestEntry(id, deadline, method, options.headers, body);
      }
      this.#pending.set(id, call);
      // The deadline runs from here: waiting for a channel or a reconnect counts against it.
      call.timer = setTimeout(() => {
        this.#settle(
          id,
          multi?.onDeadline
            ? multi.onDeadline()
            : new RpcError('DEADLINE_EXCEEDED', `no reply from "${queue}" within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const signal = options.signal;
      if (signal) {
        call.onAbort = () => {
          this.#settle(id, cancelled(signal));
          this.#cancelOnServer(call);
        };
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      const channel = this.#channel;
      if (channel && !channel.closed && !this.#link.flow.blocked) this.#publish(channel, call);
      else this.#publishLater(call);
    });
  }

  /** Publishes once a channel exists and the broker accepts publishes, if still pending. */
  #publishLater(call: PendingCall): void {
    const attempt = call.retry?.attempts;
    this.#writableChannel().then(
      (channel) => {
        // A later retry of the call supersedes this publish.
        if (this.#pending.get(call.id) === call && call.retry?.attempts === attempt) {
          this.#publish(channel, call);
        }
      },
      (error: unknown) => this.#settle(call.id, RpcError.from(error, 'UNAVAILABLE')),
    );
  }

  async #writableChannel(): Promise<AmqpChannelLike> {
    await this.#link.flow.wait();
    // A publishing channel the broker closed since the last publish: open another.
    if (this.#channel?.closed) this.#dropPublishChannel(this.#channel);
    return this.#channel ?? (await this.#open());
  }

  #publish(channel: AmqpChannelLike, call: PendingCall): void {
    if (call.entry !== undefined) {
      this.#addToBatch(channel, call);
      return;
    }
    this.#publishOne(channel, call);
  }

  #publishOne(channel: AmqpChannelLike, call: PendingCall): void {
    call.properties.replyTo = this.#replyTo;
    call.published = true;
    batchWritesThisTick(channel.connection);
    // mandatory: an unroutable request comes back as basic.return at once (see #onReturn).
    channel
      .basicPublish(call.multi?.exchange ?? '', call.queue, call.body, call.properties, true)
      .catch((error: unknown) => this.#publishFailed(channel, call, error));
  }

  /** Adds a call to its queue's batch of this tick; the batch goes out at the end of it. */
  #addToBatch(channel: AmqpChannelLike, call: PendingCall): void {
    const limits = this.#batching;
    let open = this.#openBatches.get(call.queue);
    if (open && open.channel !== channel) {
      this.#flushBatch(call.queue, open);
      open = undefined;
    }
    if (!open) {
      open = { channel, calls: [], bytes: 0 };
      if (this.#openBatches.size === 0) queueMicrotask(() => this.#flushBatches());
      this.#openBatches.set(call.queue, open);
    }
    open.calls.push(call);
    open.bytes += call.entry?.length ?? 0;
    if (limits && (open.calls.length >= limits.maxCalls || open.bytes >= limits.maxBytes)) {
      this.#flushBatch(call.queue, open);
    }
  }

  #flushBatches(): void {
    for (const [queue, open] of this.#openBatches) this.#flushBatch(queue, open);
  }

  /** Publishes a tick's calls to one queue: alone as usual, several as one batch. */
  #flushBatch(queue: string, open: OpenBatch): void {
    this.#openBatches.delete(queue);
    // Calls settled meanwhile (cancelled, timed out) are left out.
    const calls = open.calls.filter((call) => this.#pending.get(call.id) === call);
    const { channel } = open;
    if (calls.length < 2 || channel.closed) {
      for (const call of calls) this.#publishOne(channel, call);
      return;
    }
    const batch: SentBatch = {
      id: randomUUID(),
      callIds: calls.map((call) => call.id),
      unsettled: calls.length,
    };
    this.#sentBatches.set(batch.id, batch);
    // The batch lives as long as its longest call; each entry carries its own deadline.
    let expirationMs = 0;
    for (const call of calls) {
      call.batch = batch;
      call.published = true;
      expirationMs = Math.max(expirationMs, Number(call.properties.expiration));
    }
    const properties: AmqpProperties = {
      contentType: BATCH_CONTENT_TYPE,
      correlationId: batch.id,
      replyTo: this.#replyTo,
      expiration: String(expirationMs),
      headers: { [DEADLINE_HEADER]: Date.now() + expirationMs },
    };
    if (this.#options.userId !== undefined) properties.userId = this.#options.userId;
    const body = batchBody(calls.map((call) => call.entry ?? ''));
    batchWritesThisTick(channel.connection);
    channel.basicPublish('', queue, body, properties, true).catch((error: unknown) => {
      if (!this.#link.client && this.#options.replyMode === 'expiring-queue') return;
      this.#failBatch(batch, fromAmqpError(error, `publishing a batch to "${queue}" failed`));
      this.#dropPublishChannel(channel);
    });
  }

  /** Ends every call of a batch still pending with `outcome`. */
  #failBatch(batch: SentBatch, outcome: RpcError): void {
    for (const id of batch.callIds) this.#settle(id, outcome);
  }

  /** A reply to a batch: the outcomes of several of its calls, or an error for all. */
  #onBatchReply(message: AmqpMessageLike, batch: SentBatch): void {
    if (message.properties.contentType !== BATCH_CONTENT_TYPE) {
      // A server that could not read the batch (an older one: INVALID_ARGUMENT). Anything
      // else is not an answer: never a value to turn into text (it could be any JSON).
      const outcome = decodeReplyOutcome(message);
      this.#failBatch(
        batch,
        outcome instanceof RpcError
          ? outcome
          : new RpcError('INTERNAL', 'a reply to a batch of calls is not a batch reply'),
      );
      return;
    }
    let outcomes: Array<[string, unknown]>;
    try {
      outcomes = readReplyBatch(message.body);
    } catch (error) {
      this.#failBatch(batch, RpcError.from(error, 'INTERNAL'));
      return;
    }
    for (const [id, outcome] of outcomes) {
      if (this.#pending.get(id)?.batch === batch) this.#settle(id, outcome, true);
      else this.#unmatchedReplies++;
    }
  }

  /**
   * A publish failed. On a channel the broker closed (an error caused by this or another
   * request): the call fails with the broker's code; the caller learns the broker's size
   * limit if that was it; the next call opens a new publishing channel. On an open channel
   * the broker refused the request (nack): the channel may be stuck (a quorum queue client
   * bound to a dead leader), so it is replaced. Replies keep arriving on the reply channel.
   */
  #publishFailed(channel: AmqpChannelLike, call: PendingCall, error: unknown): void {
    if (!this.#link.client && this.#options.replyMode === 'expiring-queue') {
      // The connection went before the broker confirmed: the request may be in its queue,
      // and its reply would wait in the expiring reply queue. It stays pending; an
      // idempotent one is also published again (servers answer a duplicate from the cache).
      if (call.retry) {
        const cutOff = new RpcError(
          'UNAVAILABLE',
          'the connection was lost before the broker confirmed the request',
          { cause: error },
        );
        this.#settle(call.id, cutOff);
      }
      return;
    }
    const limit = brokerSizeLimit(error);
    if (limit === undefined) {
      this.#settle(call.id, fromAmqpError(error, `publishing to "${call.queue}" failed`));
      this.#dropPublishChannel(channel);
      return;
    }
    // A request over the broker's max_message_size closed the channel. The library fails
    // every unconfirmed publish of the channel, in publish order; only the oversize one is
    // at fault. Those before it were taken (their replies will come); those after it were
    // discarded by the broker, so sending them again cannot duplicate them.
    this.#maxPayloadBytes = Math.min(this.#maxPayloadBytes, limit);
    if (call.body.length > limit) {
      this.#culpritSeenOn.add(channel);
      this.#settle(
        call.id,
        new RpcError('RESOURCE_EXHAUSTED', `the broker refused the request: ${messageOf(error)}`),
      );
      this.#dropPublishChannel(channel);
    } else if (this.#culpritSeenOn.has(channel) && this.#pending.get(call.id) === call) {
      this.#dropPublishChannel(channel);
      this.#publishLater(call);
    }
  }

  /** Stops publishing on `channel`; the next call opens a new one. */
  #dropPublishChannel(channel: AmqpChannelLike): void {
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
  #open(): Promise<AmqpChannelLike> {
    this.#opening ??= this.#openChannels().catch((error: unknown) => {
      this.#opening = undefined;
      throw fromAmqpError(error, 'opening a channel failed');
    });
    return this.#opening;
  }

  async #openChannels(): Promise<AmqpChannelLike> {
    const client = await this.#link.ready();
    if (!this.#replyChannel) await this.#openReplyChannel(client);
    if (!this.#channel) this.#channel = await this.#openPublishChannel(client);
    return this.#channel;
  }

  async #openPublishChannel(client: AmqpClientLike): Promise<AmqpChannelLike> {
    const channel = await client.channel();
    channel.onReturn = (message) => this.#onReturn(message);
    if (this.#options.publisherConfirms) await channel.confirmSelect();
    return channel;
  }

  async #openReplyChannel(client: AmqpClientLike): Promise<void> {
    const direct = this.#options.replyMode === 'direct';
    // Direct Reply-to requires consuming before publishing, on the publishing channel.
    const channel = direct ? await this.#openPublishChannel(client) : await client.channel();
    let replyTo: string = DIRECT_REPLY_QUEUE;
    if (this.#options.replyMode === 'queue') {
      const queue = await channel.queueDeclare('', {
        exclusive: true,
        autoDelete: true,
        durable: false,
      });
      replyTo = queue.name;
    } else if (this.#options.replyMode === 'expiring-queue') {
      // Named after its user, with a random part; see #claimExpiringQueue. Durable because
      // RabbitMQ 4.3 refuses non-durable shared queues; classic whatever the vhost's default
      // type, as replicating one process's replies buys nothing (D29).
      replyTo = await this.#claimExpiringQueue(channel);
    }
    // An expiring queue keeps replies across a reconnect only if a reply pushed to a dying
    // connection is not lost with it: acked after use. Elsewhere no-ack (Direct Reply-to
    // requires it, and an exclusive queue dies with the connection anyway).
    const acks = this.#options.replyMode === 'expiring-queue' ? new AckBatcher(channel) : undefined;
    // A reply whose properties do not decode names no call: dropped (rejected by the AMQP
    // client when acked), counted as unmatched.
    channel.onUndecodable = (message) => {
      this.#unmatchedReplies++;
      this.#options.logger.debug({ err: message.decodeError }, 'dropped an undecodable reply');
    };
    const consumer = await channel.basicConsume(
      replyTo,
      { noAck: acks === undefined, exclusive: true },
      (message) => {
        if (!acks) return this.#onReply(message);
        acks.received(message.deliveryTag);
        this.#onReply(message);
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
    if (direct) this.#channel = channel;
  }

  /**
   * Declares the expiring reply queue: the same name on every reconnect, so replies sent
   * meanwhile wait in it; the broker deletes it once nobody has consumed it for
   * replyQueueExpiresMs. Found with a consumer while this caller had none (another
   * connection that learned its name from a request took it while this one reconnected),
   * it is deleted, which also ends that consumer, and a new queue under a new name takes its
   * place. The calls whose replies were to go there fail with UNAVAILABLE (an idempotent
   * one is sent again): their replies may have been read by the other consumer.
   */
  async #claimExpiringQueue(channel: AmqpChannelLike): Promise<string> {
    const declare = (name: string) =>
      channel.queueDeclare(
        name,
        { exclusive: false, autoDelete: false, durable: true },
        { 'x-expires': this.#options.replyQueueExpiresMs, 'x-queue-type': 'classic' },
      );
    const taken = this.#expiringQueueName;
    const { consumerCount } = await declare(taken);
    if (consumerCount === 0) return taken;
    this.#options.logger.warn(
      { queue: taken, consumers: consumerCount },
      'the expiring reply queue had another consumer: replaced by a new one',
    );
    await channel.queueDelete(taken);
    this.#expiringQueueName = expiringQueueName(this.#options.userId);
    await declare(this.#expiringQueueName);
    const lost = new RpcError(
      'UNAVAILABLE',
      'another connection consumed the reply queue while this one reconnected; the reply may have been read by it',
    );
    for (const call of [...this.#pending.values()]) {
      if (call.properties.replyTo === taken) this.#settle(call.id, lost);
    }
    return this.#expiringQueueName;
  }

  #onReply(message: AmqpMessageLike): void {
    const id = message.properties.correlationId;
    const call = id === undefined ? undefined : this.#pending.get(id);
    if (!call && id !== undefined && this.#sentBatches.size > 0) {
      const batch = this.#sentBatches.get(id);
      if (batch) {
        this.#onBatchReply(message, batch);
        return;
      }
    }
    if (!call) {
      // Late (after a timeout or cancel), duplicated, or not ours: dropped on purpose.
      this.#unmatchedReplies++;
      this.#options.logger.debug(
        { correlationId: id },
        'dropped a reply that matches no pending call',
      );
      return;
    }
    if (call.multi) {
      const outcome = call.multi.onMessage(
        message,
        call.id,
        call.properties.replyTo ?? this.#replyTo,
      );
      if (outcome !== MORE) this.#settle(call.id, outcome, true);
      return;
    }
    this.#settle(call.id, decodeReplyOutcome(message), true);
  }

  #onReturn(message: AmqpMessageLike): void {
    const id = message.properties.correlationId;
    const batch = id === undefined ? undefined : this.#sentBatches.get(id);
    if (batch) {
      const queue = message.routingKey;
      this.#failBatch(
        batch,
        new RpcError(
          'UNAVAILABLE',
          `nothing can receive requests on "${queue}": no queue is bound to it`,
        ),
      );
      return;
    }
    const call = id === undefined ? undefined : this.#pending.get(id);
    if (!call) return;
    if (call.multi?.onNoRoute) {
      this.#settle(call.id, call.multi.onNoRoute());
      return;
    }
    const why =
      message.replyCode === NO_ROUTE
        ? 'no queue is bound to it'
        : (message.replyText ?? 'returned');
    this.#settle(
      call.id,
      new RpcError('UNAVAILABLE', `nothing can receive requests on "${call.queue}": ${why}`),
    );
  }

  /**
   * Ends a pending call: an RpcError rejects it, anything else resolves it. An idempotent
   * call that failed to get through (not `answered` by its server) may be retried instead.
   */
  #settle(id: string, outcome: unknown, answered = false): void {
    const call = this.#pending.get(id);
    if (!call) return;
    const retry = call.retry;
    if (retry) {
      if (outcome instanceof RpcError) {
        if (!answered && this.#retryLater(call, retry, outcome)) return;
        outcome = retry.finalError(outcome);
      }
      clearTimeout(retry.timer);
    }
    this.#pending.delete(id);
    clearTimeout(call.timer);
    // Nothing publishes the body once the call is over (a late publish checks #pending).
    if (call.pooled) this.#bodies.give(call.pooled);
    if (call.batch && --call.batch.unsettled === 0) this.#sentBatches.delete(call.batch.id);
    if (call.signal && call.onAbort) call.signal.removeEventListener('abort', call.onAbort);
    if (outcome instanceof RpcError) call.reject(this.#failed(outcome));
    else call.resolve(outcome);
  }

  /**
   * Schedules the next attempt of an idempotent call that failed with UNAVAILABLE, after a
   * backoff and within its deadline; false when the call must end with `error` now.
   */
  #retryLater(call: PendingCall, retry: RetryState, error: RpcError): boolean {
    // Nothing can get through any more: the connection is closed for good.
    if (!isRetryable(error) || this.#closedWith || this.#link.endedWith) return false;
    retry.lastError = error;
    if (retry.timer !== undefined) return true; // an attempt is already scheduled
    const delayMs = retry.nextDelayMs();
    // No time for another attempt: the call ends at its deadline, with this as the cause.
    if (delayMs === undefined) return true;
    retry.attempts++;
    retry.timer = setTimeout(() => {
      retry.timer = undefined;
      if (this.#pending.get(call.id) !== call) return;
      this.#retries++;
      // The broker drops the request when the caller gives up, as for the first attempt.
      call.properties.expiration = String(retry.remainingMs());
      this.#publishLater(call);
    }, delayMs);
    return true;
  }

  /** The server may be running the call: tell it to stop (end-to-end cancellation). */
  #cancelOnServer(call: PendingCall): void {
    if (!call.published) return;
    if (call.multi?.onCancel) call.multi.onCancel(call.id, this.#replyTo);
    else this.#control.cancel(call.queue, call.id, undefined, this.#replyTo);
  }

  #failed(error: RpcError): RpcError {
    this.#errors[error.code] = (this.#errors[error.code] ?? 0) + 1;
    return error;
  }

  #replyChannelLost(channel: AmqpChannelLike, error: RpcError): void {
    if (this.#replyChannel !== channel) return;
    this.#replyChannel = undefined;
    if (this.#channel === channel) this.#channel = undefined;
    this.#opening = undefined;
    if (!channel.closed) channel.close().catch(() => undefined);
    if (this.#options.replyMode === 'expiring-queue') {
      // The reply queue outlives the channel: consume it again for the calls still waiting.
      if (this.#pending.size > 0) {
        this.#open().catch((cause: unknown) => {
          this.#failAll(RpcError.from(cause, 'UNAVAILABLE'));
        });
      }
      return;
    }
    // The reply queue (or Direct Reply-to) went with the channel: the calls waiting for
    // replies cannot get them. The next call opens new channels. In Direct Reply-to mode
    // the channel's error is the calls' own (they were published on it).
    const direct = this.#options.replyMode === 'direct';
    this.#failAll(direct ? error : new RpcError('UNAVAILABLE', error.message, { cause: error }));
  }

  connectionLost(error: RpcError): void {
    this.#channel = undefined;
    this.#replyChannel = undefined;
    this.#opening = undefined;
    // An exclusive reply queue (or Direct Reply-to) went with the connection: calls waiting
    // for replies cannot get them. An expiring queue keeps them for the next connection.
    if (this.#options.replyMode !== 'expiring-queue') this.#failAll(error);
  }

  connectionRestored(): void {
    // Consume the expiring reply queue again at once if replies may be waiting in it;
    // otherwise the next call opens a channel (and declares a new reply queue) itself.
    if (this.#pending.size > 0 && this.#options.replyMode === 'expiring-queue') {
      this.#open().catch((error: unknown) => {
        this.#failAll(RpcError.from(error, 'UNAVAILABLE'));
      });
    }
  }

  /** No reconnect is coming: calls still waiting (expiring-queue mode) cannot get replies. */
  connectionEnded(error: RpcError): void {
    this.#failAll(error);
  }

  #failAll(error: RpcError): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, error);
  }

  /** Deletes an expiring reply queue now rather than when it expires. */
  async deleteReplyQueue(): Promise<void> {
    const channel = this.#replyChannel;
    this.#replyChannel = undefined;
    this.#channel = undefined;
    if (channel && !channel.closed && this.#options.replyMode === 'expiring-queue') {
      await channel.queueDelete(this.#expiringQueueName).catch(() => undefined);
    }
  }

  /**
   * Rejects pending calls with `pendingError` and future calls with `laterError`. Their
   * servers are told to stop, as for an aborted signal: the replies could not be received
   * any more (the control plane sends the cancels before the connection closes).
   */
  close(pendingError: RpcError, laterError: RpcError): void {
    this.#closedWith ??= laterError;
    this.#link.leave(this);
    const pending = [...this.#pending.values()];
    this.#failAll(pendingError);
    if (this.#link.client) for (const call of pending) this.#cancelOnServer(call);
  }
}

/**
 * The name of an expiring reply queue: `rpc.reply.<user>.<uuid>`, or `rpc.reply.<uuid>`
 * without a user (`userId: false`) or with one too long for a queue name (255 bytes).
 */
function expiringQueueName(userId: string | undefined): string {
  const random = randomUUID();
  if (userId === undefined || Buffer.byteLength(userId) > MAX_USER_IN_QUEUE_NAME_BYTES) {
    return `rpc.reply.${random}`;
  }
  return `rpc.reply.${userId}.${random}`;
}

/** 255 bytes for a queue name, less `rpc.reply.`, the dot and a UUID. */
const MAX_USER_IN_QUEUE_NAME_BYTES = 255 - 10 - 1 - 36;

/**
 * Requests larger than this go on their own even with batching on: the broker's cost per
 * message is small next to theirs, and joining them as text would only add copies.
 */
const MAX_BATCHED_REQUEST_BYTES = 16 * 1024;

/** Headers travel in one AMQP frame with the other properties: keep them well below it. */
const MAX_HEADERS_BYTES = 8 * 1024;

function checkHeaders(headers: Readonly<Record<string, unknown>>): void {
  let size = 0;
  for (const [key, value] of Object.entries(headers)) size += key.length + String(value).length + 8;
  if (size > MAX_HEADERS_BYTES) {
    throw new RpcError(
      'INVALID_ARGUMENT',
      `headers take about ${size} bytes; the limit is ${MAX_HEADERS_BYTES}`,
    );
  }
}

/**
 * CANCELLED, or DEADLINE_EXCEEDED when the signal came from `AbortSignal.timeout()`; a
 * parent handler's signal aborts with an RpcError (its deadline, its caller's cancel),
 * whose code the nested call takes.
 */
function cancelled(signal: AbortSignal): RpcError {
  const reason: unknown = signal.reason;
  if (reason instanceof RpcError) {
    return new RpcError(reason.code, reason.message, { cause: reason });
  }
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new RpcError('DEADLINE_EXCEEDED', "the call's signal timed out", { cause: reason });
  }
  return new RpcError('CANCELLED', 'the call was cancelled', { cause: reason });
}
