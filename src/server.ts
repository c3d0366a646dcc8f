import type {
  AmqpChannelLike,
  AmqpClientLike,
  AmqpConsumerLike,
  AmqpField,
  AmqpMessageLike,
  AmqpProperties,
} from './transport.js';
import { AckBatcher } from './ack-batch.js';
import { brokerSizeLimit, fromAmqpError } from './amqp.js';
import { decodeBody, encodeBody, type EncodedBody } from './codec.js';
import { RpcError } from './errors.js';
import type { Link, LinkParticipant } from './link.js';
import type { ResolvedServeOptions } from './options.js';
import { DEADLINE_HEADER, MESSAGE_HEADER, STACK_HEADER, STATUS_HEADER } from './protocol.js';
import { batchWritesThisTick } from './write-batch.js';
import { DedupeCache, dedupeKey } from './dedupe-cache.js';

/** What a handler knows about the request it is running. */
export interface HandlerContext {
  /**
   * Aborts when the caller's deadline passes (reason: RpcError DEADLINE_EXCEEDED), when the
   * server stops waiting for this handler on close, or when the connection is lost.
   */
  readonly signal: AbortSignal;
  /** The caller's deadline, Unix epoch milliseconds; undefined when the caller sent none. */
  readonly deadline: number | undefined;
  /** The request's AMQP headers, including the caller's application headers. */
  readonly headers: Readonly<Record<string, unknown>>;
  /** The request's correlation id, echoed on the reply. */
  readonly correlationId: string | undefined;
  /**
   * A stable id of the request for deduplication, the same on every redelivery: the AMQP
   * `message_id` if the caller set one, else the correlation id (rabbit-rpc callers make it
   * unique per call).
   */
  readonly messageId: string | undefined;
  /** True when the broker may have delivered this request before (a hint, not a proof). */
  readonly redelivered: boolean;
  /** The queue the request came from. */
  readonly queue: string;
  /** The method name (AMQP `type` property) of a service call; undefined for plain calls. */
  readonly method: string | undefined;
}

/** A request handler: returns (or resolves to) the reply, or throws an RpcError. */
export type Handler<TRequest = unknown, TReply = unknown> = (
  request: TRequest,
  ctx: HandlerContext,
) => TReply | PromiseLike<TReply>;

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
  /** Duplicate requests (same `message_id`) answered with the first one's reply, unrun. */
  deduplicated: number;
}

/** What a request was answered with: kept by the deduplication cache for its duplicates. */
interface Answer {
  readonly reply: EncodedBody;
  readonly headers: Record<string, AmqpField> | undefined;
  /** The request itself was at fault (undecodable, too large). */
  readonly poison: boolean;
}

/** The handler's view of a request; the signal and its deadline timer exist only if read. */
class RequestContext implements HandlerContext {
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #done = false;
  constructor(
    readonly queue: string,
    private readonly message: AmqpMessageLike,
    readonly deadline: number | undefined,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.deadline !== undefined && !this.#done) {
        const deadline = this.deadline;
        this.#timer = setTimeout(
          () => {
            this.abort(new RpcError('DEADLINE_EXCEEDED', "the caller's deadline has passed"));
          },
          Math.max(0, deadline - Date.now()),
        );
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

  abort(reason: RpcError): void {
    if (this.#done) return;
    clearTimeout(this.#timer);
    (this.#controller ??= new AbortController()).abort(reason);
  }

  finish(): void {
    this.#done = true;
    clearTimeout(this.#timer);
  }
}

/**
 * Consumes one queue: runs the handler for each request (up to `prefetch` at once),
 * publishes the reply to `reply_to` with the request's correlation id, then acks.
 * After a reconnect, or when the broker cancels its consumer or closes its channel, it
 * opens a new channel, declares the queue again and goes on consuming.
 */
export class RpcServer implements AsyncDisposable, LinkParticipant {
  readonly queue: string;
  readonly #link: Link;
  readonly #options: ResolvedServeOptions;
  readonly #handler: Handler;
  #maxPayloadBytes: number;
  readonly #active = new Set<RequestContext>();
  #replied = 0;
  #expired = 0;
  #recoveries = 0;
  #deduplicated = 0;
  /** Answers by `message_id`, for duplicates; undefined with `dedupe: false`. */
  readonly #dedupe: DedupeCache<Answer> | undefined;
  #channel: AmqpChannelLike | undefined;
  #consumer: AmqpConsumerLike | undefined;
  #closing: Promise<void> | undefined;
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
  ) {
    this.#link = link;
    this.queue = queue;
    this.#handler = handler;
    this.#options = options;
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#dedupe = options.dedupe ? new DedupeCache(options.dedupe, answerBytes) : undefined;
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get stats(): ServerStats {
    return {
      active: this.#active.size,
      replied: this.#replied,
      expired: this.#expired,
      recoveries: this.#recoveries,
      deduplicated: this.#deduplicated,
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
    await this.#consume(await this.#link.ready());
    this.#link.join(this);
  }

  async #consume(client: AmqpClientLike): Promise<void> {
    let channel: AmqpChannelLike | undefined;
    try {
      channel = await client.channel();
      if (this.#options.declare) {
        await channel.queueDeclare(
          this.queue,
          {
            durable: this.#options.durable,
            autoDelete: this.#options.autoDelete,
            exclusive: false,
          },
          this.#options.queueArguments,
        );
      }
      await channel.basicQos(this.#options.prefetch);
      const acks = new AckBatcher(channel);
      this.#channel = channel;
      this.#consumer = await channel.basicConsume(this.queue, { noAck: false }, (message) => {
        this.#onRequest(acks, message);
      });
    } catch (error) {
      this.#channel = undefined;
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
    if (this.#channel !== channel || this.#closing) return;
    this.#channel = undefined;
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
    this.#consume(client).then(
      () => {
        this.#recoveries++;
        this.#link.logger.info({ queue: this.queue }, 'consuming again');
      },
      (error: unknown) => this.#fail(RpcError.from(error, 'UNAVAILABLE')),
    );
  }

  #onRequest(acks: AckBatcher, message: AmqpMessageLike): void {
    acks.received(message.deliveryTag);
    const deadline = readDeadline(message.properties.headers?.[DEADLINE_HEADER]);
    if (deadline !== undefined && deadline <= Date.now()) {
      // The caller has given up: running the handler would be wasted work.
      this.#expired++;
      acks.ack(message.deliveryTag);
      return;
    }
    const ctx = new RequestContext(this.queue, message, deadline);
    this.#active.add(ctx);
    this.#run(acks, message, ctx).then(
      () => this.#finish(ctx),
      () => this.#finish(ctx),
    );
  }

  async #run(acks: AckBatcher, message: AmqpMessageLike, ctx: RequestContext): Promise<void> {
    const dedupe = this.#dedupe;
    // Only requests with a message_id (idempotent calls) are looked up: no cost for others.
    const key =
      dedupe === undefined
        ? undefined
        : dedupeKey(message.properties.messageId, message.properties.type);
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
    let reply: EncodedBody;
    let headers: Record<string, AmqpField> | undefined;
    /** Set while the request itself is at fault (undecodable, too large): a poison message. */
    let poison = true;
    try {
      const size = message.body?.length ?? 0;
      if (size > this.#maxPayloadBytes) {
        throw new RpcError(
          'RESOURCE_EXHAUSTED',
          `request of ${size} bytes exceeds maxPayloadBytes (${this.#maxPayloadBytes})`,
        );
      }
      const request = decodeBody(message.body, message.properties.contentType, 'INVALID_ARGUMENT');
      poison = false;
      const result = await this.#handler(request, ctx);
      reply = encodeBody(result, 'INTERNAL');
      if (reply.body.length > this.#maxPayloadBytes) {
        throw new RpcError(
          'RESOURCE_EXHAUSTED',
          `reply of ${reply.body.length} bytes exceeds maxPayloadBytes (${this.#maxPayloadBytes})`,
        );
      }
    } catch (thrown) {
      const error = RpcError.from(thrown, 'UNKNOWN');
      if (error.code === 'UNKNOWN' || error.code === 'INTERNAL') {
        // An unexpected failure: worth a look. Deliberate RpcErrors are the caller's business.
        this.#link.logger.warn(
          { queue: this.queue, code: error.code, correlationId: ctx.correlationId, err: thrown },
          'handler failed',
        );
      }
      headers = { [STATUS_HEADER]: error.code, [MESSAGE_HEADER]: truncate(error.message) };
      if (this.#options.exposeErrorStack && thrown instanceof Error && thrown.stack) {
        headers[STACK_HEADER] = truncate(thrown.stack);
      }
      reply = encodeErrorDetails(error.details);
    }
    const published = await this.#reply(acks.channel, message, reply, headers);
    if (dedupe !== undefined && key !== undefined) {
      // Kept only if it went out: a handler cut off by a lost channel runs again. A copy of
      // the body: a small Buffer is a view that pins an 8 KiB pool slab.
      if (published) {
        const kept = { body: new Uint8Array(reply.body), contentType: reply.contentType };
        dedupe.complete(key, { reply: kept, headers, poison }, dedupe.expiresAt(ctx.deadline));
      } else dedupe.abandon(key);
    }
    this.#settleDelivery(acks, message, poison);
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
  ): Promise<boolean> {
    if (channel.closed) return false;
    const { replyTo, correlationId } = message.properties;
    if (replyTo) {
      const properties: AmqpProperties = { contentType: reply.contentType };
      if (correlationId !== undefined) properties.correlationId = correlationId;
      if (headers) properties.headers = headers;
      if (this.#link.flow.blocked) {
        // Hold the request (and its prefetch slot) until the broker accepts publishes again.
        await this.#link.flow.wait();
        if (isClosed(channel)) return false;
      }
      batchWritesThisTick(channel.connection);
      // A failed publish means the channel closed: the request was not acked, so it is requeued.
      channel.basicPublish('', replyTo, reply.body, properties).catch(() => undefined);
    }
    this.#replied++;
    return true;
  }

  #finish(ctx: RequestContext): void {
    ctx.finish();
    this.#active.delete(ctx);
    if (this.#active.size === 0) this.#drained?.();
  }

  /**
   * Stops taking requests, waits for running handlers (at most `drainTimeoutMs`, then their
   * `ctx.signal` aborts and unfinished requests go back to the broker), and resolves.
   * Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#link.leave(this);
    await this.#consumer?.cancel().catch(() => undefined);
    if (this.#active.size > 0) {
      const drained = new Promise<void>((resolve) => (this.#drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>(
        (resolve) => (timer = setTimeout(resolve, this.#options.drainTimeoutMs)),
      );
      await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      this.#abortActive(new RpcError('CANCELLED', 'the server is closing'));
    }
    const channel = this.#channel;
    this.#channel = undefined;
    if (channel && !channel.closed) await channel.close().catch(() => undefined);
    this.onClosed(this);
    this.#resolveClosed(undefined);
  }

  /** @internal The connection is gone: abort handlers; their requests return to the queue. */
  connectionLost(error: RpcError): void {
    this.#channel = undefined;
    this.#consumer = undefined;
    this.#abortActive(new RpcError('UNAVAILABLE', error.message, { cause: error }));
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
    this.#link.leave(this);
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

/** The bytes an answer holds in the deduplication cache: its body and error texts. */
function answerBytes(answer: Answer): number {
  let bytes = 64 + answer.reply.body.byteLength;
  if (answer.headers) {
    for (const value of Object.values(answer.headers)) {
      bytes += typeof value === 'string' ? value.length : 8;
    }
  }
  return bytes;
}

/** Reads `closed` afresh: it changes while a handler awaits. */
function isClosed(channel: AmqpChannelLike): boolean {
  return channel.closed;
}

/** Error headers stay small: a reply's properties must fit one AMQP frame. */
const MAX_ERROR_TEXT = 2_000;

function truncate(text: string): string {
  return text.length <= MAX_ERROR_TEXT ? text : `${text.slice(0, MAX_ERROR_TEXT)}…`;
}

function readDeadline(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

function encodeErrorDetails(details: unknown): EncodedBody {
  if (details === undefined) return { body: new Uint8Array(0), contentType: 'application/json' };
  try {
    return encodeBody(details, 'INTERNAL');
  } catch {
    return { body: new Uint8Array(0), contentType: 'application/json' };
  }
}
