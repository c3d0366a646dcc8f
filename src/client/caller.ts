import { Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { AmqpProperties } from '../transport/types.js';
import type { ControlPlane } from '../control/control-plane.js';
import type { Link, LinkParticipant } from '../transport/link.js';
import { checkQueueName, resolveTimeoutMs, type CallOptions } from '../options/call.js';
import type { ResolvedConnectOptions } from '../options/connect.js';
import { encodeBody, jsonText, type EncodedBody } from '../protocol/codec.js';
import { CONTENT_TYPE_JSON } from '../protocol/names.js';
import { checkHeaders, requestProperties } from '../protocol/request.js';
import { RpcError } from '../errors.js';
import { LazyChannel } from '../transport/lazy-channel.js';
import { BatchPeers, connectionPorts } from './batch-peers.js';
import { BodyPool, type PooledBody } from './body-pool.js';
import { cancelled, cancelOnServer, watchAbort } from './cancellation.js';
import { CallerChannels } from './channels.js';
import { DirectReply } from './direct-reply.js';
import { ExpiringReplyQueue } from './expiring-reply-queue.js';
import type { MultiReply } from './multi-reply.js';
import { PendingCall, PendingCalls, type CallerStats } from './pending.js';
import { ReplyQueue } from './reply-queue.js';
import type { ReplyMode } from './reply-mode.js';
import { RetryPolicy, RetryState } from './retry.js';

export type { CallerStats } from './pending.js';

/**
 * The calling side of a connection: checks and publishes calls, and keeps each one pending
 * (by correlation id) until its reply, its deadline, its signal or a failure ends it. Its
 * collaborators: the channels and the reply mode ({@link CallerChannels}), batching,
 * retries, the payload limit, and the routing of replies.
 */
export class Caller implements LinkParticipant {
  readonly #pending: PendingCalls;
  readonly #channels: CallerChannels;
  readonly #link: Link;
  readonly #options: ResolvedConnectOptions;
  readonly #control: ControlPlane;
  #closedWith: RpcError | undefined;
  /** Buffers for large request bodies, reused from call to call. */
  readonly #bodies = new BodyPool();

  constructor(link: Link, options: ResolvedConnectOptions, control: ControlPlane) {
    this.#link = link;
    this.#options = options;
    this.#control = control;
    // Nothing can get through any more: the caller or the connection is closed for good.
    const stopped = () => this.#closedWith !== undefined || link.endedWith !== undefined;
    const retry = new RetryPolicy<PendingCall>({
      isPending: (call) => this.#pending.isPending(call),
      publishLater: (call) => this.#channels.publishLater(call),
      get stopped() {
        return stopped();
      },
    });
    this.#pending = new PendingCalls(this.#bodies, retry);
    this.#channels = new CallerChannels(
      link,
      options,
      this.#pending,
      replyModeOf(options, this.#pending),
      options.batch !== false && options.batch.negotiate ? this.#batchPeers() : undefined,
    );
    link.join(this);
  }

  /**
   * What default batching asks the broker and the servers (D36): consumer counts on a
   * channel of its own, describes as calls of the library's own (no interceptor sees them,
   * the stats do not count them).
   */
  #batchPeers(): BatchPeers {
    const control = this.#control;
    return new BatchPeers(
      connectionPorts({
        peekChannel: new LazyChannel(this.#link),
        exchangeExists: () => control.exchangeExists(),
        call: (queue, timeoutMs, multi) => this.call(queue, null, { timeoutMs }, undefined, multi),
      }),
    );
  }

  get stats(): CallerStats {
    return this.#pending.stats;
  }

  /** Publishes a request and resolves with the decoded reply, or rejects with an RpcError. */
  call(
    queue: string,
    payload: unknown,
    options: CallOptions = {},
    method?: string,
    multi?: MultiReply,
  ): Promise<unknown> {
    const pending = this.#pending;
    if (multi?.internal !== true) pending.made++;
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
      this.#channels.limit.check(body.length);
      deadline = Date.now() + timeoutMs;
      properties = requestProperties(
        encoded.contentType,
        timeoutMs,
        deadline,
        options.headers,
        multi?.headers,
        method,
        this.#options.userId,
      );
    } catch (error) {
      return Promise.reject(pending.failed(RpcError.from(error, 'INTERNAL')));
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
      const batcher = this.#channels.batcher;
      // Streams and broadcasts are never retried: items or replies already taken would repeat.
      if (options.idempotent === true && !multi) {
        properties.messageId = id;
        call.retry = new RetryState(deadline);
      } else if (batcher && !multi) {
        call.entryParts = batcher.entryPartsFor(
          call,
          deadline - timeoutMs,
          deadline,
          method,
          options.headers,
        );
      }
      pending.add(call);
      // The deadline runs from here: waiting for a channel or a reconnect counts against it.
      call.deadline = pending.deadlines.add(timeoutMs, () => {
        pending.settle(
          id,
          multi?.onDeadline
            ? multi.onDeadline()
            : new RpcError('DEADLINE_EXCEEDED', `no reply from "${queue}" within ${timeoutMs} ms`),
        );
      });
      const signal = options.signal;
      if (signal) {
        watchAbort(call, signal, () => {
          pending.settle(id, cancelled(signal));
          cancelOnServer(call, this.#control, this.#channels.replyTo);
        });
      }
      this.#channels.publishNow(call);
    });
  }

  connectionLost(error: RpcError): void {
    this.#channels.connectionLost(error);
  }

  connectionRestored(): void {
    this.#channels.connectionRestored();
  }

  /** No reconnect is coming: calls still waiting (expiring-queue mode) cannot get replies. */
  connectionEnded(error: RpcError): void {
    this.#pending.failAll(error);
  }

  /** Deletes an expiring reply queue now rather than when it expires. */
  deleteReplyQueue(): Promise<void> {
    return this.#channels.dispose();
  }

  /**
   * Rejects pending calls with `pendingError` and future calls with `laterError`. Their
   * servers are told to stop, as for an aborted signal: the replies could not be received
   * any more (the control plane sends the cancels before the connection closes).
   */
  close(pendingError: RpcError, laterError: RpcError): void {
    this.#closedWith ??= laterError;
    this.#channels.batcher?.close();
    this.#link.leave(this);
    const pending = this.#pending.values();
    this.#pending.failAll(pendingError);
    this.#pending.deadlines.close();
    if (this.#link.client) {
      for (const call of pending) cancelOnServer(call, this.#control, this.#channels.replyTo);
    }
  }
}

/** The strategy of `options.replyMode`: the one place that reads it. */
function replyModeOf(options: ResolvedConnectOptions, pending: PendingCalls): ReplyMode {
  switch (options.replyMode) {
    case 'queue':
      return new ReplyQueue();
    case 'direct':
      return new DirectReply();
    case 'expiring-queue':
      return new ExpiringReplyQueue(
        options.userId,
        options.replyQueueExpiresMs,
        options.logger,
        pending,
      );
  }
}
