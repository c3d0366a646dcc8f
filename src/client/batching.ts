import { randomUUID } from 'node:crypto';
import type { AmqpChannelLike, AmqpMessageLike } from '../transport/types.js';
import { fromAmqpError } from '../transport/errors.js';
import { batchWritesThisTick } from '../transport/amqp-client.js';
import type { BatchOptions } from '../options/connect.js';
import { BATCH_CONTENT_TYPE, batchBody, readReplyBatch, requestEntry } from '../protocol/batch.js';
import { decodeReplyOutcome } from '../protocol/error-reply.js';
import { CONTENT_TYPE_JSON } from '../protocol/names.js';
import { batchRequestProperties } from '../protocol/request.js';
import { RpcError } from '../errors.js';
import type { PendingCall, PendingCalls, SentBatch } from './pending.js';

/**
 * Requests larger than this go on their own even with batching on: the broker's cost per
 * message is small next to theirs, and joining them as text would only add copies.
 */
export const MAX_BATCHED_REQUEST_BYTES = 16 * 1024;

/** What the {@link Batcher} needs of the publishing side. */
export interface BatchPort {
  /** The reply address of requests published now. */
  readonly replyTo: string;
  /** Publishes one call on its own. */
  publishOne(channel: AmqpChannelLike, call: PendingCall): void;
  /**
   * True when the connection went and replies survive it: a request whose publish failed
   * may be in its queue, and its reply would still come.
   */
  readonly repliesOutliveConnection: boolean;
  /** Stops publishing on `channel`; the next call opens a new one. */
  dropPublishChannel(channel: AmqpChannelLike): void;
}

/** Calls to one queue waiting for the end of the tick, to go out as one batch. */
interface OpenBatch {
  readonly channel: AmqpChannelLike;
  readonly calls: PendingCall[];
  bytes: number;
}

/**
 * Batching (opt-in): the calls of one tick to one queue go out as one message
 * (docs/protocol.md, "Batches"); a call alone in its tick goes as usual.
 */
export class Batcher {
  readonly #limits: Required<BatchOptions>;
  readonly #pending: PendingCalls;
  readonly #port: BatchPort;
  readonly #userId: string | undefined;
  /** Batches being filled in this tick, by queue. */
  readonly #open = new Map<string, OpenBatch>();
  readonly #flushAll = (): void => {
    for (const [queue, open] of this.#open) this.#flush(queue, open);
  };

  constructor(
    limits: Required<BatchOptions>,
    pending: PendingCalls,
    port: BatchPort,
    userId: string | undefined,
  ) {
    this.#limits = limits;
    this.#pending = pending;
    this.#port = port;
    this.#userId = userId;
  }

  /** The call as a batch entry when it may travel in a batch (small JSON), else undefined. */
  entryFor(
    call: PendingCall,
    deadline: number,
    method: string | undefined,
    headers: Readonly<Record<string, string | number | boolean>> | undefined,
  ): string | undefined {
    if (
      call.properties.contentType !== CONTENT_TYPE_JSON ||
      call.body.length > Math.min(this.#limits.maxBytes / 2, MAX_BATCHED_REQUEST_BYTES)
    ) {
      return undefined;
    }
    return requestEntry(call.id, deadline, method, headers, call.body);
  }

  /** Adds a call to its queue's batch of this tick; the batch goes out at the end of it. */
  add(channel: AmqpChannelLike, call: PendingCall): void {
    let open = this.#open.get(call.queue);
    if (open && open.channel !== channel) {
      this.#flush(call.queue, open);
      open = undefined;
    }
    if (!open) {
      open = { channel, calls: [], bytes: 0 };
      if (this.#open.size === 0) queueMicrotask(this.#flushAll);
      this.#open.set(call.queue, open);
    }
    open.calls.push(call);
    open.bytes += call.entry?.length ?? 0;
    if (open.calls.length >= this.#limits.maxCalls || open.bytes >= this.#limits.maxBytes) {
      this.#flush(call.queue, open);
    }
  }

  /** Publishes a tick's calls to one queue: alone as usual, several as one batch. */
  #flush(queue: string, open: OpenBatch): void {
    this.#open.delete(queue);
    // Calls settled meanwhile (cancelled, timed out) are left out.
    const calls = open.calls.filter((call) => this.#pending.isPending(call));
    const { channel } = open;
    if (calls.length < 2 || channel.closed) {
      for (const call of calls) this.#port.publishOne(channel, call);
      return;
    }
    const batch: SentBatch = {
      id: randomUUID(),
      callIds: calls.map((call) => call.id),
      unsettled: calls.length,
    };
    this.#pending.batches.set(batch.id, batch);
    // The batch lives as long as its longest call; each entry carries its own deadline.
    let expirationMs = 0;
    for (const call of calls) {
      call.batch = batch;
      call.published = true;
      expirationMs = Math.max(expirationMs, Number(call.properties.expiration));
    }
    const properties = batchRequestProperties(
      BATCH_CONTENT_TYPE,
      batch.id,
      this.#port.replyTo,
      expirationMs,
      this.#userId,
    );
    const body = batchBody(calls.map((call) => call.entry ?? ''));
    batchWritesThisTick(channel.connection);
    channel.basicPublish('', queue, body, properties, true).catch((error: unknown) => {
      if (this.#port.repliesOutliveConnection) return;
      this.fail(batch, fromAmqpError(error, `publishing a batch to "${queue}" failed`));
      this.#port.dropPublishChannel(channel);
    });
  }

  /** Ends every call of a batch still pending with `outcome`. */
  fail(batch: SentBatch, outcome: RpcError): void {
    for (const id of batch.callIds) this.#pending.settle(id, outcome);
  }

  /** A reply to a batch: the outcomes of several of its calls, or an error for all. */
  onReply(message: AmqpMessageLike, batch: SentBatch): void {
    if (message.properties.contentType !== BATCH_CONTENT_TYPE) {
      // A server that could not read the batch (an older one: INVALID_ARGUMENT). Anything
      // else is not an answer: never a value to turn into text (it could be any JSON).
      const outcome = decodeReplyOutcome(message);
      this.fail(
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
      this.fail(batch, RpcError.from(error, 'INTERNAL'));
      return;
    }
    for (const [id, outcome] of outcomes) {
      if (this.#pending.get(id)?.batch === batch) this.#pending.settle(id, outcome, true);
      else this.#pending.unmatchedReplies++;
    }
  }
}
