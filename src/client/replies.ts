import type { AmqpMessageLike } from '../transport/types.js';
import type { Logger } from '../logger.js';
import { decodeReplyOutcome } from '../protocol/error-reply.js';
import { NO_ROUTE } from '../protocol/names.js';
import { RpcError } from '../errors.js';
import { MORE } from './multi-reply.js';
import type { PendingCalls } from './pending.js';
import type { Batcher } from './batching.js';

/** The reply address of requests published now (the caller's channels). */
export interface ReplyAddress {
  readonly replyTo: string;
}

/**
 * Routes what comes back to the calls: a reply (or a return of an unroutable request) to its
 * pending call, its batch, or its stream's or broadcast's {@link MultiReply}.
 */
export class Replies {
  readonly #pending: PendingCalls;
  readonly #batcher: Batcher | undefined;
  readonly #address: ReplyAddress;
  readonly #logger: Logger;

  constructor(
    pending: PendingCalls,
    batcher: Batcher | undefined,
    address: ReplyAddress,
    logger: Logger,
  ) {
    this.#pending = pending;
    this.#batcher = batcher;
    this.#address = address;
    this.#logger = logger;
  }

  onReply(message: AmqpMessageLike): void {
    const pending = this.#pending;
    const id = message.properties.correlationId;
    const call = id === undefined ? undefined : pending.get(id);
    if (!call && id !== undefined && pending.batches.size > 0) {
      const batch = pending.batches.get(id);
      if (batch && this.#batcher) {
        this.#batcher.onReply(message, batch);
        return;
      }
    }
    if (!call) {
      // An answer to a describe of the library's own, after it had enough: not the user's.
      if (id !== undefined && pending.wasInternal(id)) return;
      // Late (after a timeout or cancel), duplicated, or not ours: dropped on purpose.
      pending.unmatchedReplies++;
      this.#logger.debug({ correlationId: id }, 'dropped a reply that matches no pending call');
      return;
    }
    if (call.multi) {
      const outcome = call.multi.onMessage(
        message,
        call.id,
        call.properties.replyTo ?? this.#address.replyTo,
      );
      if (outcome !== MORE) pending.settle(call.id, outcome, true);
      return;
    }
    pending.settleCall(call, decodeReplyOutcome(message), true);
  }

  /** A reply whose properties do not decode names no call: dropped, counted as unmatched. */
  onUndecodable(message: AmqpMessageLike): void {
    this.#pending.unmatchedReplies++;
    this.#logger.debug({ err: message.decodeError }, 'dropped an undecodable reply');
  }

  onReturn(message: AmqpMessageLike): void {
    const pending = this.#pending;
    const id = message.properties.correlationId;
    const batch = id === undefined ? undefined : pending.batches.get(id);
    if (batch && this.#batcher) {
      // Also stops batching to the queue (D36).
      this.#batcher.onReturn(batch, message.routingKey);
      return;
    }
    const call = id === undefined ? undefined : pending.get(id);
    if (!call) return;
    if (call.multi?.onNoRoute) {
      pending.settle(call.id, call.multi.onNoRoute());
      return;
    }
    const why =
      message.replyCode === NO_ROUTE
        ? 'no queue is bound to it'
        : (message.replyText ?? 'returned');
    pending.settle(
      call.id,
      new RpcError('UNAVAILABLE', `nothing can receive requests on "${call.queue}": ${why}`),
    );
  }
}
