import type {
  AmqpChannelLike,
  AmqpClientLike,
  AmqpConsumerLike,
  AmqpField,
  AmqpMessageLike,
  AmqpProperties,
} from '../transport/types.js';
import { AckBatcher } from '../transport/ack-batch.js';
import { brokerSizeLimit, fromAmqpError } from '../transport/errors.js';
import { decodeBody, encodeBody, type EncodedBody } from '../protocol/codec.js';
import { RpcError } from '../errors.js';
import type { Link } from '../transport/link.js';
import type { ResolvedServeOptions } from '../options/serve.js';
import type { ControlPlane, ControlSender } from '../control/control-plane.js';
import {
  CONTROL_QUEUE_HEADER,
  MESSAGE_HEADER,
  STATUS_HEADER,
  STREAM_HEADER,
  STREAM_SEQ_HEADER,
} from '../protocol/names.js';
import { StreamCredit } from './stream-credit.js';
import { Slots } from './slots.js';
import {
  BATCH_CONTENT_TYPE,
  batchBody,
  entryMessage,
  readRequestBatch,
  replyEntry,
  type BatchEntry,
} from '../protocol/batch.js';
import { CONTENT_TYPE_JSON, DIRECT_REPLY_QUEUE } from '../protocol/names.js';
import { EMPTY_REPLY, encodeErrorReply } from '../protocol/error-reply.js';
import { readDeadline } from '../protocol/deadline.js';
import { readWindow } from '../protocol/stream.js';
import { batchWritesThisTick } from '../transport/amqp-client.js';
import { settledWithin } from '../within.js';
import { setTimeoutAt, type LongTimeout } from '../timers.js';
import type { ContractDescription } from '../protocol/describe.js';
import { describeInstance, ErrorCounts } from './describe.js';
import { DedupeCache, dedupeKey } from './dedupe.js';
import type { Handler, HandlerContext } from '../handler.js';
import { declareServiceQueue } from './declare.js';

export type { Handler, HandlerContext } from '../handler.js';

/** Counters of one server; {@link RpcServer.stats} returns a copy. */
export interface ServerStats {
  /** Handlers running now. */
  active: number;
  /** Requests answered (success or error reply). */
  replied: number;
  /** Requests dropped unstarted because their deadline had passed. */
  expired: number;
  /** Times the server consumed again after a reconnect, a cancelled consumer or a channel error. */
  recoveries: number;
  /**
   * Cancels received: for a request running here (its `ctx.signal` aborts), or for one not
   * started yet (dropped if it comes; every instance serving the queue counts those).
   */
  cancelled: number;
  /** Duplicate requests (same `message_id`) answered with the first one's reply, unrun. */
  deduplicated: number;
  /**
   * Requests whose AMQP properties could not be decoded (a header table nested too deep, a
   * malformed field): rejected without requeue, so dead-lettered where the queue has a
   * dead-letter exchange, never run and never answered (their `reply_to` is unreadable).
   */
  undecodable: number;
  /**
   * Requests given up on because their handler still ran 2 s after the caller's deadline
   * (it ignored `ctx.signal`): acked unanswered, so the handler no longer holds a prefetch
   * slot. docs/decisions.md, D30.
   */
  abandoned: number;
}

/** The handler's view of a request; the signal and its deadline timer exist only if read. */
class RequestContext implements HandlerContext {
  #controller: AbortController | undefined;
  #timer: LongTimeout | undefined;
  #done = false;
  /** Set while the reply streams: the caller's credit. */
  credit: StreamCredit | undefined;
  /** Set once the server gave up on this request past its deadline (see ServerStats.abandoned). */
  abandoned = false;
  /** Settles the delivery when the request is abandoned; unset for requests that need none. */
  onAbandon: (() => void) | undefined;
  /** Which of the server's bounds this run holds a slot of, until it finishes. */
  slots: Slots | undefined;
  /** Its caller cancelled it (a verified cancel). */
  cancelledByCaller = false;
  constructor(
    readonly queue: string,
    private readonly message: AmqpMessageLike,
    readonly deadline: number | undefined,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.deadline !== undefined && !this.#done) {
        // The caller chose the deadline: it may be further ahead than one Node timer waits.
        this.#timer = setTimeoutAt(() => {
          this.abort(new RpcError('DEADLINE_EXCEEDED', "the caller's deadline has passed"));
        }, this.deadline);
      }
    }
    return this.#controller.signal;
  }
  get headers(): Readonly<Record<string, unknown>> {
    return this.message.properties.headers ?? {};
  }
  get correlationId(): string | undefined {
    return this.message.properties.correlationId;
  }
  get messageId(): string | undefined {
    const { messageId, correlationId } = this.message.properties;
    return messageId ?? correlationId;
  }
  get redelivered(): boolean {
    return this.message.redelivered;
  }
  get method(): string | undefined {
    return this.message.properties.type;
  }
  /** Where the reply goes: matched by cancels. */
  get replyTo(): string | undefined {
    return this.message.properties.replyTo;
  }
  get userId(): string | undefined {
    return this.message.properties.userId;
  }

  /** Aborted already (before it started, if it waited for a slot). */
  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }

  abort(reason: RpcError): void {
    if (this.#done) return;
    this.#timer?.clear();
    (this.#controller ??= new AbortController()).abort(reason);
  }

  finish(): void {
    this.#done = true;
    this.#timer?.clear();
  }
}

/**
 * Consumes one queue: runs the handler for each request (up to `prefetch` at once),
 * publishes the reply to `reply_to` with the request's correlation id, then acks.
 * After a reconnect, or when the broker cancels its consumer or closes its channel, it
 * opens a new channel, declares the queue again and goes on consuming.
 */
// Not `implements LinkParticipant, ControlTarget`: those are internal, and the published
// types would name them. The link and the control plane take it structurally.
export class RpcServer implements AsyncDisposable {
  readonly queue: string;
  readonly #link: Link;
  readonly #options: ResolvedServeOptions;
  readonly #handler: Handler;
  #maxPayloadBytes: number;
  readonly #active = new Set<RequestContext>();
  /** Requests and batch entries: at most `prefetch` handlers at once. */
  readonly #slots: Slots;
  /** Broadcasts (no prefetch applies to them): a bound of their own, also `prefetch`. */
  readonly #broadcastSlots: Slots;
  /** Replies streaming now, by correlation id: where credit goes, without a scan of #active. */
  readonly #streaming = new Map<string, Set<RequestContext>>();
  #replied = 0;
  #expired = 0;
  #recoveries = 0;
  #cancelled = 0;
  /** Cancels that came before their request: it is dropped when it arrives. Bounded. */
  readonly #cancelledEarly = new Set<string>();
  #deduplicated = 0;
  #undecodable = 0;
  #abandoned = 0;
  /** Looks for handlers running past their deadline; see {@link RpcServer.#sweep}. */
  #sweepTimer: NodeJS.Timeout | undefined;
  /** For the describe answer: error replies by code, and when consuming began. */
  readonly #errors = new ErrorCounts();
  #startedAt = Date.now();
  /** Answers by `message_id`, for duplicates; undefined with `dedupe: false`. */
  readonly #dedupe: DedupeCache<Replied> | undefined;
  #channel: AmqpChannelLike | undefined;
  /** Settles the deliveries of #channel. */
  #acks: AckBatcher | undefined;
  #consumer: AmqpConsumerLike | undefined;
  /** Consuming again after a loss: close() waits for it, or the new consumer would outlive it. */
  #recovering: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  /** Set once close() has taken the channel to close it: a late recovery closes its own. */
  #stopped = false;
  #drained: (() => void) | undefined;
  readonly #closed: Promise<RpcError | undefined>;
  #resolveClosed!: (error: RpcError | undefined) => void;

  /** @internal Use {@link RpcConnection.serve}. */
  constructor(
    link: Link,
    queue: string,
    handler: Handler,
    options: ResolvedServeOptions,
    maxPayloadBytes: number,
    private readonly onClosed: (server: RpcServer) => void,
    private readonly control: ControlPlane | undefined,
    /** The contract served, for describe requests; undefined for a plain handler. */
    private readonly contract?: ContractDescription,
  ) {
    this.#link = link;
    this.queue = queue;
    this.#handler = handler;
    this.#options = options;
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#dedupe = options.dedupe ? new DedupeCache(options.dedupe, answerBytes) : undefined;
    this.#slots = new Slots(options.prefetch);
    this.#broadcastSlots = new Slots(options.prefetch);
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get stats(): ServerStats {
    return {
      active: this.#active.size,
      replied: this.#replied,
      expired: this.#expired,
      recoveries: this.#recoveries,
      cancelled: this.#cancelled,
      deduplicated: this.#deduplicated,
      undecodable: this.#undecodable,
      abandoned: this.#abandoned,
    };
  }

  /**
   * Resolves when the server has stopped for good: `undefined` after `close()`, or the
   * RpcError that made it stop (its queue could not be declared or consumed again).
   */
  get closed(): Promise<RpcError | undefined> {
    return this.#closed;
  }

  /** @internal Declares the queue, sets the prefetch and starts consuming. */
  async start(): Promise<void> {
    // The control queue first: ready for cancels before the first request, and set up
    // before any reply is published (a broker resource alarm would then block the
    // connection, and with it the control plane's channel operations).
    await this.control?.register(this.queue, this);
    try {
      await this.#consume(await this.#link.ready());
    } catch (error) {
      this.control?.unregister(this.queue, this);
      throw error;
    }
    this.#link.join(this);
    this.#sweepTimer = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS);
    this.#sweepTimer.unref();
    this.#startedAt = Date.now();
  }

  /**
   * Gives up on requests whose handler still runs ABANDON_AFTER_DEADLINE_MS after the
   * caller's deadline: nobody waits for the reply, and on RabbitMQ 4.3 no consumer timeout
   * ever takes a classic queue's delivery back, so a handler that ignores `ctx.signal`
   * would hold its prefetch slot for good and, a few of them, stop the server. The request
   * is acked unanswered; the handler runs on (JavaScript cannot stop it), outside the
   * prefetch count. A periodic scan of the running requests, not a timer per request: the
   * hot path stays as it is. docs/decisions.md, D30.
   */
  #sweep(): void {
    if (this.#active.size === 0) return;
    const limit = Date.now() - ABANDON_AFTER_DEADLINE_MS;
    for (const ctx of this.#active) {
      if (ctx.deadline === undefined || ctx.deadline > limit || ctx.abandoned) continue;
      ctx.abandoned = true;
      this.#abandoned++;
      this.#link.logger.warn(
        { queue: this.queue, correlationId: ctx.correlationId, deadline: ctx.deadline },
        `a handler still runs ${ABANDON_AFTER_DEADLINE_MS} ms after its deadline: its request ` +
          'is acked unanswered to free its prefetch slot (handlers should stop when ctx.signal aborts)',
      );
      ctx.abort(new RpcError('DEADLINE_EXCEEDED', "the caller's deadline has passed"));
      ctx.onAbandon?.();
      this.#finish(ctx);
    }
  }

  /**
   * @internal A describe request (docs/protocol.md, "Describe and discovery"): answered on
   * the control channel with what this server is and how it is doing; never runs the handler.
   */
  describe(message: AmqpMessageLike): void {
    const { replyTo, correlationId } = message.properties;
    const instance = this.control?.address;
    if (this.#closing || !replyTo || !this.control || instance === undefined) return;
    const body = describeInstance({
      queue: this.queue,
      contract: this.contract,
      instance,
      startedAt: this.#startedAt,
      inFlight: this.#active.size,
      prefetch: this.#options.prefetch,
      replied: this.#replied,
      expired: this.#expired,
      errors: this.#errors,
    });
    const properties: AmqpProperties = {
      contentType: CONTENT_TYPE_JSON,
      headers: { [CONTROL_QUEUE_HEADER]: instance },
    };
    if (correlationId !== undefined) properties.correlationId = correlationId;
    this.control.reply(replyTo, new TextEncoder().encode(JSON.stringify(body)), properties);
  }

  async #consume(client: AmqpClientLike): Promise<void> {
    let channel: AmqpChannelLike | undefined;
    try {
      channel = this.#options.declare
        ? await declareServiceQueue(client, this.queue, this.#options, this.#link.logger)
        : await client.channel();
      await channel.basicQos(this.#options.prefetch);
      // The AMQP client has rejected such a request already (without requeue): count it.
      channel.onUndecodable = (message) => {
        this.#undecodable++;
        this.#link.logger.warn(
          { queue: this.queue, err: message.decodeError },
          'rejected a request whose AMQP properties do not decode',
        );
      };
      const acks = new AckBatcher(channel, () => this.#checkDrained());
      this.#channel = channel;
      this.#acks = acks;
      this.#consumer = await channel.basicConsume(this.queue, { noAck: false }, (message) => {
        this.#onRequest(acks, message);
      });
      if (this.#stopped) {
        // close() gave up waiting for this recovery and has finished: stop at once.
        acks.flush();
        channel.close().catch(() => undefined);
        return;
      }
    } catch (error) {
      this.#channel = undefined;
      this.#acks = undefined;
      channel?.close().catch(() => undefined);
      throw fromAmqpError(error, `serving "${this.queue}" failed`);
    }
    const consumedOn = channel;
    this.#consumer.wait().then(
      () => undefined,
      (error: unknown) => {
        this.#consumerStopped(
          consumedOn,
          fromAmqpError(error, `the consumer of "${this.queue}" stopped`),
        );
      },
    );
  }

  /** The broker cancelled the consumer (queue deleted) or closed the channel (a channel error). */
  #consumerStopped(channel: AmqpChannelLike, error: RpcError): void {
    // While closing: the deliveries of a closed channel are void, nothing to wait for.
    this.#checkDrained();
    if (this.#channel !== channel || this.#closing) return;
    this.#channel = undefined;
    this.#acks = undefined;
    // A reply over the broker's max_message_size closed the channel and its request comes
    // back: from now on such a reply becomes RESOURCE_EXHAUSTED instead of looping.
    this.#maxPayloadBytes = Math.min(this.#maxPayloadBytes, brokerSizeLimit(error) ?? Infinity);
    this.#abortActive(new RpcError('UNAVAILABLE', error.message, { cause: error }));
    channel.close().catch(() => undefined);
    const client = this.#link.client;
    // A lost connection is handled by connectionLost/connectionRestored instead.
    if (client && !client.closed) this.#recover(client);
  }

  #recover(client: AmqpClientLike): void {
    const recovering = this.#consume(client).then(
      () => {
        this.#recoveries++;
        this.#link.logger.info({ queue: this.queue }, 'consuming again');
      },
      (error: unknown) => {
        const failure = RpcError.from(error, 'UNAVAILABLE');
        // The connection went meanwhile (a network failure, or another server's declaration
        // the broker answered with a connection error): connectionRestored tries again on
        // the next one. Only a refusal of this server's own declaration stops it.
        if (client.closed && !isRefusal(failure)) return;
        this.#fail(failure);
      },
    );
    this.#recovering = recovering;
    const done = (): void => {
      if (this.#recovering === recovering) this.#recovering = undefined;
    };
    recovering.then(done, done);
  }

  #onRequest(acks: AckBatcher, message: AmqpMessageLike): void {
    acks.received(message.deliveryTag);
    const deadline = readDeadline(message.properties.headers);
    if (deadline !== undefined && deadline <= Date.now()) {
      // The caller has given up: running the handler would be wasted work.
      this.#expired++;
      acks.ack(message.deliveryTag);
      return;
    }
    const id = message.properties.correlationId;
    if (this.#cancelledEarly.size > 0 && id !== undefined && this.#wasCancelled(id, message)) {
      acks.ack(message.deliveryTag);
      return;
    }
    if (message.properties.contentType === BATCH_CONTENT_TYPE) {
      this.#onBatch(acks, message);
      return;
    }
    const ctx = new RequestContext(this.queue, message, deadline);
    this.#active.add(ctx);
    // The prefetch bounds messages; the slots bound handlers, batch entries included.
    if (this.#slots.tryTake()) {
      ctx.slots = this.#slots;
      this.#start(acks, message, ctx);
      return;
    }
    void this.#slots.take().then(() => {
      ctx.slots = this.#slots;
      if (this.#startsLate(acks, message, ctx)) this.#start(acks, message, ctx);
    });
  }

  /**
   * A request that waited for a slot: false (and settled) when it is not to run any more:
   * its deadline passed, its caller cancelled it (acked, dropped), or it was aborted
   * otherwise (closing, a lost channel: left unacked, the broker gets it back).
   */
  #startsLate(acks: AckBatcher, message: AmqpMessageLike, ctx: RequestContext): boolean {
    const expired = ctx.deadline !== undefined && ctx.deadline <= Date.now();
    if (!expired && !ctx.aborted) return true;
    if (expired) this.#expired++;
    if ((expired || ctx.cancelledByCaller) && !isClosed(acks.channel))
      acks.ack(message.deliveryTag);
    this.#finish(ctx);
    return false;
  }

  /** Runs a request that holds a slot. */
  #start(acks: AckBatcher, message: AmqpMessageLike, ctx: RequestContext): void {
    // Only requests with a message_id (idempotent calls) are looked up: no cost for others.
    const key =
      this.#dedupe === undefined
        ? undefined
        : dedupeKey(
            message.properties.messageId,
            message.properties.type,
            message.properties.userId,
          );
    let started: Replied | Streamed | Promise<Replied | Streamed> | undefined;
    if (key === undefined) {
      started = this.#execute(message, ctx, readWindow(message.properties.headers));
      if (started instanceof Replied && !this.#link.flow.blocked) {
        // The handler answered at once: reply and ack in this tick, no promise in between.
        this.#publishReply(acks.channel, message, started.reply, started.headers);
        this.#settleDelivery(acks, message, started.poison);
        this.#finish(ctx);
        return;
      }
    }
    ctx.onAbandon = () => acks.ack(message.deliveryTag);
    this.#run(acks, message, ctx, key, started).then(
      () => this.#finish(ctx),
      () => this.#finish(ctx),
    );
  }

  /**
   * A batch of calls in one message (docs/protocol.md, "Batches"): each runs as a request of
   * its own (its own deadline, context, cancellation); replies ready in the same tick go
   * back together in one message; the batch is acked once every call is answered.
   */
  #onBatch(acks: AckBatcher, message: AmqpMessageLike): void {
    const channel = acks.channel;
    let entries: BatchEntry[];
    try {
      if (this.#options.requireUserId && !message.properties.userId) {
        throw new RpcError('UNAUTHENTICATED', 'this server requires a user_id on requests');
      }
      const limits = this.#options.batch;
      if (limits === false) {
        throw new RpcError('UNIMPLEMENTED', 'this server does not take batches (batch: false)');
      }
      const size = message.body?.length ?? 0;
      const maxBytes = Math.min(this.#maxPayloadBytes, limits.maxBytes);
      if (size > maxBytes) {
        throw new RpcError(
          'RESOURCE_EXHAUSTED',
          `batch of ${size} bytes exceeds this server's limit (${maxBytes})`,
        );
      }
      entries = readRequestBatch(message.body);
      if (entries.length > limits.maxEntries) {
        throw new RpcError(
          'RESOURCE_EXHAUSTED',
          `batch of ${entries.length} calls exceeds this server's limit (${limits.maxEntries})`,
        );
      }
    } catch (thrown) {
      // The whole batch is refused: one error reply to the batch, which fails all its calls.
      // Only a malformed one is poison (dead-lettered where configured).
      const [reply, headers] = this.#errorReply(thrown, message.properties.correlationId);
      this.#publishReply(channel, message, reply, headers);
      this.#settleDelivery(
        acks,
        message,
        thrown instanceof RpcError && thrown.code === 'INVALID_ARGUMENT',
      );
      return;
    }
    let waiting = entries.length;
    let ready: string[] = [];
    let flushing = false;
    let sent: Promise<unknown> = Promise.resolve();
    const flush = (): void => {
      flushing = false;
      if (ready.length > 0) {
        const body = batchBody(ready);
        const answers = ready.length;
        ready = [];
        const reply = { body, contentType: BATCH_CONTENT_TYPE };
        sent = sent.then(() => this.#reply(channel, message, reply, undefined, answers));
      }
      if (waiting === 0) {
        sent.then(
          () => this.#settleDelivery(acks, message, false),
          () => undefined,
        );
      }
    };
    const answer = (entry: BatchEntry, outcome: Replied | undefined): void => {
      waiting--;
      if (outcome) {
        const headers = outcome.headers;
        const status = headers?.[STATUS_HEADER];
        const text = headers?.[MESSAGE_HEADER];
        ready.push(
          replyEntry(
            entry.id,
            typeof status === 'string' ? status : undefined,
            typeof text === 'string' ? text : undefined,
            outcome.reply.contentType,
            outcome.reply.body,
          ),
        );
      }
      if (!flushing) {
        flushing = true;
        queueMicrotask(flush);
      }
    };
    /** Runs one entry; it holds a slot, given back when it is answered. */
    const start = (entry: BatchEntry): void => {
      const expired = entry.deadline !== undefined && entry.deadline <= Date.now();
      if (expired || (this.#cancelledEarly.size > 0 && this.#wasCancelled(entry.id, message))) {
        if (expired) this.#expired++;
        this.#slots.give();
        answer(entry, undefined);
        return;
      }
      const ctx = new RequestContext(this.queue, entryMessage(message, entry), entry.deadline);
      ctx.slots = this.#slots;
      this.#active.add(ctx);
      ctx.onAbandon = () => answer(entry, undefined);
      const outcome = this.#invoke(entry.payload, ctx, undefined);
      if (outcome instanceof Replied) {
        answer(entry, outcome);
        this.#finish(ctx);
      } else {
        // Never a stream: a batched call has no window (FAILED_PRECONDITION), so a Replied.
        // #invoke never rejects; were it to, the batch must still be acked once all are done.
        const done = (settled: unknown): void => {
          if (ctx.abandoned) return; // answered (with nothing) when it was abandoned
          answer(entry, settled instanceof Replied ? settled : undefined);
          this.#finish(ctx);
        };
        Promise.resolve(outcome).then(done, done);
      }
    };
    // Entries start one by one as slots free up, in turn with other requests: a batch of
    // thousands runs no more handlers at once than `prefetch` plain requests would, and
    // waits with one pending take(), not one per entry.
    let next = 0;
    const startNext = (): boolean => {
      // The channel is gone: the batch comes back from the broker, unacked; stop here.
      if (isClosed(channel)) {
        this.#slots.give();
        return false;
      }
      start(entries[next++] as BatchEntry);
      return true;
    };
    const pump = (): void => {
      while (next < entries.length) {
        if (!this.#slots.tryTake()) {
          void this.#slots.take().then(() => {
            if (startNext()) pump();
          });
          return;
        }
        if (!startNext()) return;
      }
    };
    pump();
    if (entries.length === 0) flush();
  }

  /**
   * Answers a request whose handler has not answered at once: it is async, it streams, the
   * broker blocks publishes, or the request may be a duplicate (`key`, its message_id).
   */
  async #run(
    acks: AckBatcher,
    message: AmqpMessageLike,
    ctx: RequestContext,
    key: string | undefined,
    started: Replied | Streamed | Promise<Replied | Streamed> | undefined,
  ): Promise<void> {
    const dedupe = key === undefined ? undefined : this.#dedupe;
    if (dedupe !== undefined && key !== undefined) {
      const earlier = await dedupe.earlierAnswer(key);
      if (earlier) {
        // A duplicate: the same reply again, to this delivery's reply_to; the handler does not run.
        this.#deduplicated++;
        await this.#reply(acks.channel, message, earlier.reply, earlier.headers);
        this.#settleDelivery(acks, message, earlier.poison);
        return;
      }
      if (isClosed(acks.channel)) {
        // Waited for a first delivery that was cut off with this one: both come back.
        dedupe.abandon(key);
        return;
      }
    }
    const outcome = await (started ??
      this.#execute(message, ctx, readWindow(message.properties.headers)));
    if (wasAbandoned(ctx)) {
      // Acked unanswered past its deadline (#sweep): nobody waits for this any more.
      if (key !== undefined) dedupe?.abandon(key);
      if (outcome instanceof Streamed) closeIterable(outcome.source);
      return;
    }
    if (outcome instanceof Streamed) {
      // Streams are not kept for duplicates: a duplicate runs the handler again.
      if (key !== undefined) dedupe?.abandon(key);
      const end = await this.#sendStream(
        acks.channel,
        message,
        ctx,
        outcome.source,
        outcome.window,
      );
      if (wasAbandoned(ctx)) return;
      await this.#reply(acks.channel, message, end.reply, end.headers);
      acks.ack(message.deliveryTag);
      return;
    }
    const published = await this.#reply(acks.channel, message, outcome.reply, outcome.headers);
    if (dedupe !== undefined && key !== undefined) {
      // Kept only if it went out: a handler cut off by a lost channel runs again. A copy of
      // the body: a small Buffer is a view that pins an 8 KiB pool slab.
      if (published) {
        const { body, contentType } = outcome.reply;
        const kept = new Replied(
          { body: new Uint8Array(body), contentType },
          outcome.headers,
          outcome.poison,
        );
        dedupe.complete(key, kept, dedupe.expiresAt(ctx.deadline));
      } else dedupe.abandon(key);
    }
    this.#settleDelivery(acks, message, outcome.poison);
  }

  /**
   * Answered; a poison request is kept for inspection in the dead-letter exchange, if the
   * queue has one. Never requeued.
   */
  #settleDelivery(acks: AckBatcher, message: AmqpMessageLike, poison: boolean): void {
    if (poison && this.#options.deadLetter) acks.reject(message.deliveryTag);
    else acks.ack(message.deliveryTag);
  }

  /**
   * Decodes the request and runs the handler: the reply (success or error) to send, or the
   * stream to send item by item when the handler returned one to a caller that streams.
   * Synchronous when the handler is: most handlers answer without awaiting anything.
   */
  #execute(
    message: AmqpMessageLike,
    ctx: RequestContext,
    window: number | undefined,
  ): Replied | Streamed | Promise<Replied | Streamed> {
    let request: unknown;
    /** Set while the request itself is at fault (undecodable, too large): a poison message. */
    let poison = true;
    try {
      if (this.#options.requireUserId && !ctx.userId) {
        poison = false; // refused, not malformed: acked, never dead-lettered
        throw new RpcError('UNAUTHENTICATED', 'this server requires a user_id on requests');
      }
      const size = message.body?.length ?? 0;
      if (size > this.#maxPayloadBytes) {
        throw new RpcError(
          'RESOURCE_EXHAUSTED',
          `request of ${size} bytes exceeds maxPayloadBytes (${this.#maxPayloadBytes})`,
        );
      }
      request = decodeBody(message.body, message.properties.contentType, 'INVALID_ARGUMENT');
    } catch (thrown) {
      return this.#failure(thrown, ctx, poison);
    }
    return this.#invoke(request, ctx, window);
  }

  /** Runs the handler on a decoded request; synchronous when the handler is. */
  #invoke(
    request: unknown,
    ctx: RequestContext,
    window: number | undefined,
  ): Replied | Streamed | Promise<Replied | Streamed> {
    try {
      const result = this.#handler(request, ctx);
      if (isThenable(result)) {
        return Promise.resolve(result).then(
          (value) => this.#outcomeOf(value, ctx, window),
          (thrown: unknown) => this.#failure(thrown, ctx, false),
        );
      }
      return this.#outcomeOf(result, ctx, window);
    } catch (thrown) {
      return this.#failure(thrown, ctx, false);
    }
  }

  /** What to send for the handler's result: a reply, or a stream to a caller that streams. */
  #outcomeOf(result: unknown, ctx: RequestContext, window: number | undefined): Replied | Streamed {
    try {
      if (isAsyncIterable(result)) {
        if (window !== undefined) return new Streamed(result, window);
        closeIterable(result);
        throw new RpcError(
          'FAILED_PRECONDITION',
          'this handler streams its reply: read it with stream() (from the command line: rabbit-rpc call --stream)',
        );
      }
      return new Replied(this.#encodeReply(result), undefined, false);
    } catch (thrown) {
      return this.#failure(thrown, ctx, false);
    }
  }

  #failure(thrown: unknown, ctx: RequestContext, poison: boolean): Replied {
    return new Replied(...this.#errorReply(thrown, ctx.correlationId), poison);
  }

  #encodeReply(result: unknown): EncodedBody {
    const reply = encodeBody(result, 'INTERNAL');
    if (reply.body.length > this.#maxPayloadBytes) {
      throw new RpcError(
        'RESOURCE_EXHAUSTED',
        `reply of ${reply.body.length} bytes exceeds maxPayloadBytes (${this.#maxPayloadBytes})`,
      );
    }
    return reply;
  }

  /** The error reply for whatever a handler threw: details in the body, the code in headers. */
  #errorReply(
    thrown: unknown,
    correlationId: string | undefined,
  ): [EncodedBody, Record<string, AmqpField>] {
    const error = RpcError.from(thrown, 'UNKNOWN');
    this.#errors.count(error.code);
    if (error.code === 'UNKNOWN' || error.code === 'INTERNAL') {
      // An unexpected failure: worth a look. Deliberate RpcErrors are the caller's business.
      this.#link.logger.warn(
        { queue: this.queue, code: error.code, correlationId, err: thrown },
        'handler failed',
      );
    }
    const stack =
      this.#options.exposeErrorStack && thrown instanceof Error ? thrown.stack : undefined;
    return encodeErrorReply(error, stack);
  }

  /**
   * Sends a streamed reply: one message per item, each only once the caller has granted
   * credit for it, then returns the closing `end` message (with the error, if the stream
   * failed). Stops the source when the caller cancels or the deadline passes.
   */
  async #sendStream(
    channel: AmqpChannelLike,
    message: AmqpMessageLike,
    ctx: RequestContext,
    source: AsyncIterable<unknown>,
    window: number,
  ): Promise<{ reply: EncodedBody; headers: Record<string, AmqpField> }> {
    const controlQueue = this.control?.address;
    // No control queue (no permission for it): no credit can come, so send without waiting for it.
    const credit = new StreamCredit(controlQueue === undefined ? Number.POSITIVE_INFINITY : window);
    ctx.credit = credit;
    const id = ctx.correlationId;
    if (id !== undefined) {
      const same = this.#streaming.get(id);
      if (same) same.add(ctx);
      else this.#streaming.set(id, new Set([ctx]));
    }
    try {
      return await this.#sendItems(channel, message, ctx, source, credit, controlQueue);
    } finally {
      if (id !== undefined) {
        const same = this.#streaming.get(id);
        same?.delete(ctx);
        if (same?.size === 0) this.#streaming.delete(id);
      }
    }
  }

  /** Sends the items as the caller's credit allows; returns the stream's last message. */
  async #sendItems(
    channel: AmqpChannelLike,
    message: AmqpMessageLike,
    ctx: RequestContext,
    source: AsyncIterable<unknown>,
    credit: StreamCredit,
    controlQueue: string | undefined,
  ): Promise<{ reply: EncodedBody; headers: Record<string, AmqpField> }> {
    const signal = ctx.signal;
    const iterator = source[Symbol.asyncIterator]();
    const headers: Record<string, AmqpField> = { [STREAM_HEADER]: 'item' };
    if (controlQueue !== undefined) headers[CONTROL_QUEUE_HEADER] = controlQueue;
    let seq = 0;
    try {
      for (;;) {
        await credit.ready(seq, signal);
        const next = await iterator.next();
        if (next.done) break;
        if (signal.aborted) throw signal.reason;
        const item = this.#encodeReply(next.value);
        await this.#reply(channel, message, item, { ...headers, [STREAM_SEQ_HEADER]: seq });
        seq++;
      }
    } catch (thrown) {
      // Runs the generator's finally blocks (a no-op if the generator is what threw).
      await iterator.return?.().catch(() => undefined);
      const [reply, errorHeaders] = this.#errorReply(thrown, ctx.correlationId);
      return { reply, headers: { ...errorHeaders, ...headers, [STREAM_HEADER]: 'end' } };
    }
    return { reply: EMPTY_REPLY, headers: { ...headers, [STREAM_HEADER]: 'end' } };
  }

  /**
   * @internal The caller of `correlationId` cancelled: abort its handler (control plane).
   * Only a call the cancel can be verified to be about: the same user (`user_id`, checked by
   * the broker) when the request named one, and the same reply address when the cancel
   * names one (another caller may use the same id).
   */
  cancel(correlationId: string, from: ControlSender): void {
    this.#cancelled++;
    for (const ctx of this.#active) {
      if (ctx.correlationId === correlationId && sentBy(ctx, from)) {
        ctx.cancelledByCaller = true;
        ctx.abort(new RpcError('CANCELLED', 'the caller cancelled the call'));
        return;
      }
    }
    // Not running here (yet): if the request comes later, it is dropped unstarted.
    const address = from.replyTo === undefined ? undefined : replyAddress(from.replyTo);
    this.#cancelledEarly.add(earlyCancelKey(correlationId, address, from.userId));
    if (this.#cancelledEarly.size > MAX_EARLY_CANCELS) {
      const [oldest] = this.#cancelledEarly;
      if (oldest !== undefined) this.#cancelledEarly.delete(oldest);
    }
  }

  /** True (and forgotten) when a cancel for this request came before it, from its user. */
  #wasCancelled(correlationId: string, message: AmqpMessageLike): boolean {
    const address = replyAddress(message.properties.replyTo);
    const user = message.properties.userId;
    return (
      this.#cancelledEarly.delete(earlyCancelKey(correlationId, address, user)) ||
      this.#cancelledEarly.delete(earlyCancelKey(correlationId, undefined, user))
    );
  }

  /**
   * @internal The caller of stream `correlationId` accepts `total` items in all; honoured
   * from the call's own user and reply address only, as cancels are.
   */
  credit(correlationId: string, total: number, from: ControlSender): void {
    const streams = this.#streaming.get(correlationId);
    if (!streams) return;
    for (const ctx of streams) if (sentBy(ctx, from)) ctx.credit?.grant(total);
  }

  /**
   * @internal A broadcast request (see `RpcConnection.broadcast`): run like any request,
   * answered on the control channel with this instance's control queue in the reply. Not
   * acked (the control queue is consumed without acks) and never streamed.
   */
  broadcast(message: AmqpMessageLike): void {
    if (this.#closing) return;
    const deadline = readDeadline(message.properties.headers);
    if (deadline !== undefined && deadline <= Date.now()) return;
    const slots = this.#broadcastSlots;
    const ctx = new RequestContext(this.queue, message, deadline);
    if (slots.tryTake()) {
      ctx.slots = slots;
      this.#active.add(ctx);
      this.#answerBroadcast(message, ctx);
      return;
    }
    if (slots.waiting >= this.#options.prefetch) {
      // No prefetch holds broadcasts back (the control queue has no acks): past this many
      // waiting, an instance answers at once instead of holding more of them in memory.
      const busy = new RpcError(
        'RESOURCE_EXHAUSTED',
        `this instance is running ${this.#options.prefetch} broadcasts and has as many waiting`,
      );
      this.#sendBroadcastReply(message, this.#failure(busy, ctx, false));
      return;
    }
    this.#active.add(ctx);
    void slots.take().then(() => {
      ctx.slots = slots;
      const expired = ctx.deadline !== undefined && ctx.deadline <= Date.now();
      if (expired || ctx.aborted) this.#finish(ctx);
      else this.#answerBroadcast(message, ctx);
    });
  }

  #answerBroadcast(message: AmqpMessageLike, ctx: RequestContext): void {
    const done = (outcome: Replied | Streamed | undefined): void => {
      if (outcome instanceof Replied) this.#sendBroadcastReply(message, outcome);
      this.#finish(ctx);
    };
    const outcome = this.#execute(message, ctx, undefined);
    if (outcome instanceof Promise) outcome.then(done, () => done(undefined));
    else done(outcome);
  }

  #sendBroadcastReply(message: AmqpMessageLike, outcome: Replied): void {
    const { replyTo, correlationId } = message.properties;
    if (!replyTo || !this.control) return;
    const properties: AmqpProperties = {
      contentType: outcome.reply.contentType,
      headers: { ...outcome.headers, [CONTROL_QUEUE_HEADER]: this.control.address ?? '' },
    };
    if (correlationId !== undefined) properties.correlationId = correlationId;
    this.control.reply(replyTo, outcome.reply.body, properties);
    this.#replied++;
  }

  /**
   * Publishes the reply on the channel the request came from (the caller acks or nacks
   * right after, in the same socket write); a request without reply_to gets no reply.
   * When that channel is gone the delivery is void (the broker has requeued it): nothing
   * is sent, and no stale delivery tag is acked. Resolves true when the reply went out
   * (or none was wanted).
   */
  async #reply(
    channel: AmqpChannelLike,
    message: AmqpMessageLike,
    reply: EncodedBody,
    headers: Record<string, AmqpField> | undefined,
    answers = 1,
  ): Promise<boolean> {
    if (this.#link.flow.blocked && message.properties.replyTo) {
      // Hold the request (and its prefetch slot) until the broker accepts publishes again.
      await this.#link.flow.wait();
    }
    return this.#publishReply(channel, message, reply, headers, answers);
  }

  /** Publishes a reply now; false when the channel is gone (the request was requeued). */
  #publishReply(
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
    if (headers?.[STREAM_HEADER] !== 'item') this.#replied += answers;
    return true;
  }

  #finish(ctx: RequestContext): void {
    ctx.finish();
    if (this.#active.delete(ctx)) {
      ctx.slots?.give();
      ctx.slots = undefined;
    }
    this.#checkDrained();
  }

  /**
   * Nothing left to wait for before closing: no handler runs, and every delivery is settled
   * (a batch is acked only after its last call and its reply; a void channel settles nothing).
   */
  #isDrained(): boolean {
    if (this.#active.size > 0) return false;
    const acks = this.#acks;
    return acks === undefined || acks.channel.closed || acks.unsettled === 0;
  }

  #checkDrained(): void {
    if (this.#drained && this.#isDrained()) this.#drained();
  }

  /**
   * Stops taking requests, waits for running handlers (at most `drainTimeoutMs`, then their
   * `ctx.signal` aborts and unfinished requests go back to the broker), and resolves once
   * every request it answered is acked and its channel is closed. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // A recovery under way would start a consumer after the cancel below: let it finish.
    if (this.#recovering) await settledWithin(this.#recovering, CLOSE_STEP_TIMEOUT_MS);
    if (this.#consumer) await settledWithin(this.#consumer.cancel(), CLOSE_STEP_TIMEOUT_MS);
    if (!this.#isDrained()) {
      const drained = new Promise<void>((resolve) => (this.#drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>(
        (resolve) => (timer = setTimeout(resolve, this.#options.drainTimeoutMs)),
      );
      await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      this.#abortActive(new RpcError('CANCELLED', 'the server is closing'));
    }
    // Only now: while draining, cancels and stream credit must still reach the handlers.
    this.control?.unregister(this.queue, this);
    this.#link.leave(this);
    this.#stopped = true;
    clearInterval(this.#sweepTimer);
    const channel = this.#channel;
    const acks = this.#acks;
    this.#channel = undefined;
    this.#acks = undefined;
    if (channel && !channel.closed) {
      // The last acks were gathered for the end of this tick; closing first would drop them
      // and the broker would requeue requests already answered. Ack, then close: the
      // broker handles a channel's frames in order, so close-ok means the acks are in.
      acks?.flush();
      await settledWithin(channel.close(), CLOSE_STEP_TIMEOUT_MS);
    }
    this.onClosed(this);
    this.#resolveClosed(undefined);
  }

  /** @internal The connection is gone: abort handlers; their requests return to the queue. */
  connectionLost(error: RpcError): void {
    this.#channel = undefined;
    this.#acks = undefined;
    this.#consumer = undefined;
    this.#abortActive(new RpcError('UNAVAILABLE', error.message, { cause: error }));
    this.#checkDrained();
  }

  /** @internal A new connection: consume again. */
  connectionRestored(client: AmqpClientLike): void {
    if (!this.#closing) this.#recover(client);
  }

  /** @internal No reconnect is coming: the server stops for good. */
  connectionEnded(error: RpcError): void {
    this.#fail(error);
  }

  /** Stops for good: the queue cannot be consumed any more. */
  #fail(error: RpcError): void {
    if (this.#closing) return;
    this.#link.logger.error(
      { queue: this.queue, code: error.code },
      `server stopped: ${error.message}`,
    );
    this.#closing = Promise.resolve();
    clearInterval(this.#sweepTimer);
    this.#link.leave(this);
    this.control?.unregister(this.queue, this);
    this.#abortActive(error);
    this.onClosed(this);
    this.#resolveClosed(error);
  }

  #abortActive(reason: RpcError): void {
    for (const ctx of this.#active) ctx.abort(reason);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** How long past its deadline a handler may run before its request is abandoned (#sweep). */
const ABANDON_AFTER_DEADLINE_MS = 2_000;
/** How often a server looks for such handlers. */
const SWEEP_INTERVAL_MS = 1_000;

/** How long close() waits for each broker answer (cancel-ok, close-ok) before going on. */
const CLOSE_STEP_TIMEOUT_MS = 2_000;

/** The bytes an answer holds in the deduplication cache: its body and error texts. */
function answerBytes(answer: Replied): number {
  let bytes = 64 + answer.reply.body.byteLength;
  if (answer.headers) {
    for (const value of Object.values(answer.headers)) {
      bytes += typeof value === 'string' ? value.length : 8;
    }
  }
  return bytes;
}

/** A broker refusal that repeats on every attempt (see declare.ts). */
function isRefusal(error: RpcError): boolean {
  return error.code === 'FAILED_PRECONDITION' || error.code === 'PERMISSION_DENIED';
}

/** Reads `abandoned` afresh: #sweep sets it while a handler awaits. */
function wasAbandoned(ctx: RequestContext): boolean {
  return ctx.abandoned;
}

/** Reads `closed` afresh: it changes while a handler awaits. */
function isClosed(channel: AmqpChannelLike): boolean {
  return channel.closed;
}

/** The reply of a handler run: a success or an error, ready to publish. */
class Replied {
  constructor(
    readonly reply: EncodedBody,
    readonly headers: Record<string, AmqpField> | undefined,
    /** The request itself was at fault: undecodable or too large. */
    readonly poison: boolean,
  ) {}
}

/** A handler's AsyncIterable, to send to a caller that streams. */
class Streamed {
  constructor(
    readonly source: AsyncIterable<unknown>,
    readonly window: number,
  ) {}
}

/** How many cancels for requests not (yet) running a server remembers. */
const MAX_EARLY_CANCELS = 1_000;

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  );
}

/** Stops a stream that will not be sent (runs an async generator's finally blocks). */
function closeIterable(source: AsyncIterable<unknown>): void {
  source[Symbol.asyncIterator]()
    .return?.()
    .catch(() => undefined);
}

/**
 * A reply address as both sides know it: a Direct Reply-to caller publishes
 * `amq.rabbitmq.reply-to` and its server sees `amq.rabbitmq.reply-to.<token>`.
 */
function replyAddress(replyTo: string | undefined): string {
  if (replyTo === undefined) return '';
  return replyTo.startsWith(`${DIRECT_REPLY_QUEUE}.`) ? DIRECT_REPLY_QUEUE : replyTo;
}

/**
 * Whether a control message can be about this request: sent by the request's user when the
 * request named one (an anonymous request accepts any), naming the request's reply address
 * when it names one.
 */
function sentBy(ctx: RequestContext, from: ControlSender): boolean {
  if (ctx.userId !== undefined && from.userId !== ctx.userId) return false;
  return from.replyTo === undefined || replyAddress(from.replyTo) === replyAddress(ctx.replyTo);
}

/** Length-prefixed parts: no two (user, address, id) triples make the same key. */
function earlyCancelKey(
  correlationId: string,
  address: string | undefined,
  userId: string | undefined,
): string {
  const user = userId ?? '';
  const to = address ?? '\n';
  return `${user.length}:${user}${to.length}:${to}${correlationId}`;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as Partial<PromiseLike<unknown>>).then === 'function'
  );
}
