import type { AmqpChannelLike, AmqpField, AmqpMessageLike } from '../transport/types.js';
import type { ControlSender } from '../protocol/control.js';
import type { EncodedBody } from '../protocol/codec.js';
import { EMPTY_REPLY } from '../protocol/error-reply.js';
import { CONTROL_QUEUE_HEADER, STREAM_HEADER, STREAM_SEQ_HEADER } from '../protocol/names.js';
import { StreamCredit } from './stream-credit.js';
import { sentBy } from './cancels.js';
import type { RequestContext } from './context.js';
import type { Executor } from './execute.js';
import type { Responder } from './respond.js';

/** The last message of a stream: `end`, with the error if the stream failed. */
export interface StreamEnd {
  readonly reply: EncodedBody;
  readonly headers: Record<string, AmqpField>;
}

/**
 * Sends a server's streamed replies (docs/protocol.md, "Streams"): one message per item,
 * each only once the caller has granted credit for it; credit comes through the control
 * plane, found by correlation id.
 */
export class StreamSender {
  /** Replies streaming now, by correlation id: where credit goes, without a scan of all requests. */
  readonly #streaming = new Map<string, Set<RequestContext>>();

  constructor(
    private readonly executor: Executor,
    private readonly responder: Responder,
    /** This connection's control queue, where credit comes; undefined without a control plane. */
    private readonly controlQueue: () => string | undefined,
  ) {}

  /**
   * The caller of stream `correlationId` accepts `total` items in all; honoured from the
   * call's own user and reply address only, as cancels are.
   */
  credit(correlationId: string, total: number, from: ControlSender): void {
    const streams = this.#streaming.get(correlationId);
    if (!streams) return;
    for (const ctx of streams) if (sentBy(ctx, from)) ctx.credit?.grant(total);
  }

  /**
   * Sends the items as the caller's credit allows, then returns the closing `end` message
   * (with the error, if the stream failed). Stops the source when the caller cancels or
   * the deadline passes.
   */
  async send(
    channel: AmqpChannelLike,
    message: AmqpMessageLike,
    ctx: RequestContext,
    source: AsyncIterable<unknown>,
    window: number,
  ): Promise<StreamEnd> {
    const controlQueue = this.controlQueue();
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

  async #sendItems(
    channel: AmqpChannelLike,
    message: AmqpMessageLike,
    ctx: RequestContext,
    source: AsyncIterable<unknown>,
    credit: StreamCredit,
    controlQueue: string | undefined,
  ): Promise<StreamEnd> {
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
        const item = this.executor.encodeReply(next.value);
        await this.responder.reply(channel, message, item, {
          ...headers,
          [STREAM_SEQ_HEADER]: seq,
        });
        seq++;
      }
    } catch (thrown) {
      // Runs the generator's finally blocks (a no-op if the generator is what threw).
      await iterator.return?.().catch(() => undefined);
      const [reply, errorHeaders] = this.executor.errorReply(thrown, ctx.correlationId);
      return { reply, headers: { ...errorHeaders, ...headers, [STREAM_HEADER]: 'end' } };
    }
    return { reply: EMPTY_REPLY, headers: { ...headers, [STREAM_HEADER]: 'end' } };
  }
}
