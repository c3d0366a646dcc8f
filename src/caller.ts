import { randomBytes } from 'node:crypto';
import type { AMQPChannel, AMQPClient, AMQPMessage, AMQPProperties } from '@cloudamqp/amqp-client';
import { batchWritesThisTick, fromAmqpError } from './amqp.js';
import { decodeBody, encodeBody } from './codec.js';
import { RpcError, isRpcErrorCode } from './errors.js';
import type { FlowGate } from './flow.js';
import {
  checkQueueName,
  resolveTimeoutMs,
  type CallOptions,
  type ResolvedConnectOptions,
} from './options.js';
import {
  DEADLINE_HEADER,
  DIRECT_REPLY_QUEUE,
  MESSAGE_HEADER,
  NO_ROUTE,
  STATUS_HEADER,
} from './protocol.js';

/** One call waiting for its reply. A class, not a closure, to keep per-call cost low. */
class PendingCall {
  timer: NodeJS.Timeout | undefined;
  constructor(
    readonly id: string,
    readonly queue: string,
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: RpcError) => void,
    readonly signal: AbortSignal | undefined,
    readonly onAbort: (() => void) | undefined,
  ) {}
}

/** Counters kept by the calling side; {@link RpcConnection.stats} returns a copy. */
export interface CallerStats {
  /** Calls waiting for a reply right now. */
  pending: number;
  /** Replies that matched no pending call (late after a timeout, duplicated, or foreign). */
  unmatchedReplies: number;
}

/**
 * The calling side of a connection: one channel, one reply consumer and a map of pending
 * calls keyed by correlation id. Every way a call ends deletes its entry.
 */
export class Caller {
  readonly #pending = new Map<string, PendingCall>();
  readonly #options: ResolvedConnectOptions;
  /** Correlation ids are this prefix plus a counter: unique per caller, cheap to make. */
  readonly #idPrefix = `${randomBytes(6).toString('base64url')}.`;
  #nextId = 0;
  #unmatchedReplies = 0;
  #channel: AMQPChannel | undefined;
  #replyTo = '';
  #opening: Promise<void> | undefined;
  #closedWith: RpcError | undefined;

  constructor(
    private readonly client: AMQPClient,
    private readonly flow: FlowGate,
    options: ResolvedConnectOptions,
  ) {
    this.#options = options;
  }

  get stats(): CallerStats {
    return { pending: this.#pending.size, unmatchedReplies: this.#unmatchedReplies };
  }

  /** Publishes a request and resolves with the decoded reply, or rejects with an RpcError. */
  call(
    queue: string,
    payload: unknown,
    options: CallOptions = {},
    method?: string,
  ): Promise<unknown> {
    // Everything that can fail synchronously fails here, before anything is published.
    try {
      checkQueueName(queue);
      const timeoutMs = resolveTimeoutMs(options.timeoutMs, this.#options.defaultTimeoutMs);
      const signal = options.signal;
      if (signal?.aborted) throw cancelled(signal);
      if (this.#closedWith) throw this.#closedWith;
      const encoded = encodeBody(payload, 'INVALID_ARGUMENT');
      if (encoded.body.length > this.#options.maxPayloadBytes) {
        throw new RpcError(
          'RESOURCE_EXHAUSTED',
          `request of ${encoded.body.length} bytes exceeds maxPayloadBytes (${this.#options.maxPayloadBytes})`,
        );
      }
      const deadline = Date.now() + timeoutMs;
      const properties: AMQPProperties = {
        contentType: encoded.contentType,
        expiration: String(timeoutMs),
        headers: options.headers
          ? { ...options.headers, [DEADLINE_HEADER]: deadline }
          : { [DEADLINE_HEADER]: deadline },
      };
      // The method name of a service call travels in the AMQP `type` property.
      if (method !== undefined) properties.type = method;
      if (this.#channel) return this.#start(queue, encoded.body, properties, timeoutMs, signal);
      return this.#open().then(() =>
        this.#start(queue, encoded.body, properties, timeoutMs, signal),
      );
    } catch (error) {
      return Promise.reject(RpcError.from(error, 'INTERNAL'));
    }
  }

  #start(
    queue: string,
    body: Uint8Array,
    properties: AMQPProperties,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const channel = this.#channel;
    if (!channel || this.#closedWith) {
      return Promise.reject(
        this.#closedWith ?? new RpcError('UNAVAILABLE', 'the reply channel is closed'),
      );
    }
    // The signal may have aborted while the channel was opening.
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    const id = this.#idPrefix + (this.#nextId++).toString(36);
    properties.correlationId = id;
    properties.replyTo = this.#replyTo;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = signal ? () => this.#settle(id, cancelled(signal)) : undefined;
      const call = new PendingCall(id, queue, resolve, reject, signal, onAbort);
      this.#pending.set(id, call);
      call.timer = setTimeout(() => {
        this.#settle(
          id,
          new RpcError('DEADLINE_EXCEEDED', `no reply from "${queue}" within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      if (signal && onAbort) signal.addEventListener('abort', onAbort, { once: true });
      if (this.flow.blocked) {
        // The call's own timer bounds the wait.
        this.flow.wait().then(() => {
          if (this.#pending.has(id)) this.#publish(channel, id, queue, body, properties);
        }, noop);
      } else {
        this.#publish(channel, id, queue, body, properties);
      }
    });
  }

  #publish(
    channel: AMQPChannel,
    id: string,
    queue: string,
    body: Uint8Array,
    properties: AMQPProperties,
  ): void {
    batchWritesThisTick(this.client);
    // mandatory: an unroutable request comes back as basic.return at once (see #onReturn).
    channel.basicPublish('', queue, body, properties, true).catch((error: unknown) => {
      this.#settle(id, fromAmqpError(error, `publishing to "${queue}" failed`));
    });
  }

  /** Opens the channel and the reply consumer once; concurrent first calls share it. */
  #open(): Promise<void> {
    this.#opening ??= this.#openChannel().catch((error: unknown) => {
      this.#opening = undefined;
      throw fromAmqpError(error, 'opening the reply channel failed');
    });
    return this.#opening;
  }

  async #openChannel(): Promise<void> {
    const channel = await this.client.channel();
    channel.onReturn = (message) => this.#onReturn(message);
    let replyTo: string = DIRECT_REPLY_QUEUE;
    if (this.#options.replyMode === 'queue') {
      const queue = await channel.queueDeclare('', {
        exclusive: true,
        autoDelete: true,
        durable: false,
      });
      replyTo = queue.name;
    }
    // Direct Reply-to requires consuming before publishing, on the publishing channel.
    const consumer = await channel.basicConsume(
      replyTo,
      { noAck: true, exclusive: true },
      (message) => {
        this.#onReply(message);
      },
    );
    // A channel the broker closes (or a cancelled reply consumer) fails the calls it carried.
    consumer.wait().then(
      () => undefined,
      (error: unknown) =>
        this.#channelLost(channel, fromAmqpError(error, 'the reply channel closed')),
    );
    this.#replyTo = replyTo;
    this.#channel = channel;
  }

  #onReply(message: AMQPMessage): void {
    const id = message.properties.correlationId;
    const call = id === undefined ? undefined : this.#pending.get(id);
    if (!call) {
      // Late (after a timeout or cancel), duplicated, or not ours: dropped on purpose.
      this.#unmatchedReplies++;
      return;
    }
    let outcome: unknown;
    try {
      outcome = decodeReply(message);
    } catch (error) {
      outcome = RpcError.from(error, 'INTERNAL');
    }
    this.#settle(call.id, outcome);
  }

  #onReturn(message: AMQPMessage): void {
    const id = message.properties.correlationId;
    const call = id === undefined ? undefined : this.#pending.get(id);
    if (!call) return;
    const why =
      message.replyCode === NO_ROUTE
        ? 'no queue is bound to it'
        : (message.replyText ?? 'returned');
    this.#settle(
      call.id,
      new RpcError('UNAVAILABLE', `nothing can receive requests on "${call.queue}": ${why}`),
    );
  }

  /** Ends a pending call: an RpcError rejects it, anything else resolves it. */
  #settle(id: string, outcome: unknown): void {
    const call = this.#pending.get(id);
    if (!call) return;
    this.#pending.delete(id);
    clearTimeout(call.timer);
    if (call.signal && call.onAbort) call.signal.removeEventListener('abort', call.onAbort);
    if (outcome instanceof RpcError) call.reject(outcome);
    else call.resolve(outcome);
  }

  #channelLost(channel: AMQPChannel, error: RpcError): void {
    if (this.#channel !== channel) return;
    this.#channel = undefined;
    this.#opening = undefined;
    // Reopened lazily by the next call; the calls it carried cannot get their replies.
    this.failAll(new RpcError('UNAVAILABLE', error.message, { cause: error }));
  }

  /** Rejects every pending call with `error`. */
  failAll(error: RpcError): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, error);
  }

  /** Rejects pending calls with `pendingError` and future calls with `laterError`. */
  close(pendingError: RpcError, laterError: RpcError = pendingError): void {
    this.#closedWith ??= laterError;
    this.#channel = undefined;
    this.failAll(pendingError);
  }
}

function decodeReply(message: AMQPMessage): unknown {
  const { headers, contentType } = message.properties;
  const status = headers?.[STATUS_HEADER];
  if (status === undefined) return decodeBody(message.body, contentType, 'INTERNAL');
  const code = isRpcErrorCode(status) ? status : 'UNKNOWN';
  const text = headers?.[MESSAGE_HEADER];
  let details: unknown;
  try {
    details = decodeBody(message.body, contentType, 'INTERNAL');
  } catch {
    details = undefined; // an error reply is still an error when its details are garbled
  }
  return new RpcError(code, typeof text === 'string' ? text : `remote error ${code}`, {
    details,
  });
}

/** CANCELLED, or DEADLINE_EXCEEDED when the signal came from `AbortSignal.timeout()`. */
function cancelled(signal: AbortSignal): RpcError {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new RpcError('DEADLINE_EXCEEDED', "the call's signal timed out", { cause: reason });
  }
  return new RpcError('CANCELLED', 'the call was cancelled', { cause: reason });
}

function noop(): void {
  // nothing to do
}
