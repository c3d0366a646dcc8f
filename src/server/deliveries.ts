import type { AmqpMessageLike } from '../transport/types.js';
import type { AckBatcher } from '../transport/ack-batch.js';
import { BATCH_CONTENT_TYPE } from '../protocol/batch.js';
import { readDeadline } from '../protocol/deadline.js';
import { readWindow } from '../protocol/stream.js';
import { admitEnvelope, isExpired } from './admission.js';
import { RequestContext } from './context.js';
import { dedupeKey, keptAnswer } from './dedupe.js';
import { closeIterable, Replied, Streamed, type Outcome } from './execute.js';
import { isClosed } from './respond.js';
import { runBatch } from './batch.js';
import type { ServerParts } from './parts.js';

/**
 * The deliveries of the served queue, the plain origin of requests: admitted (silent drops
 * at arrival, refusals once a slot is held), run, answered and settled. A handler that
 * answers synchronously is replied to and acked in the same tick, with no promise and no
 * closure in between (the fast path).
 */
export class Deliveries {
  constructor(private readonly parts: ServerParts) {}

  onDelivery(acks: AckBatcher, message: AmqpMessageLike): void {
    acks.received(message.deliveryTag);
    const { running, counters } = this.parts;
    const deadline = readDeadline(message.properties.headers);
    const id = message.properties.correlationId;
    const dropped = admitEnvelope(deadline, id, message, running.earlyCancels);
    if (dropped !== undefined) {
      // The caller has given up (or will not read the answer): running it would be wasted work.
      if (dropped === 'expired') counters.expired++;
      acks.ack(message.deliveryTag);
      return;
    }
    if (message.properties.contentType === BATCH_CONTENT_TYPE) {
      runBatch(this.parts, acks, message);
      return;
    }
    const ctx = new RequestContext(this.parts.queue, message, deadline);
    running.active.add(ctx);
    // The prefetch bounds messages; the slots bound handlers, batch entries included.
    const slots = running.slots;
    if (slots.tryTake()) {
      ctx.slots = slots;
      this.#start(acks, message, ctx);
      return;
    }
    void slots.take().then(() => {
      ctx.slots = slots;
      if (this.#startsLate(acks, message, ctx)) this.#start(acks, message, ctx);
    });
  }

  /**
   * A request that waited for a slot: false (and settled) when it is not to run any more:
   * its deadline passed, its caller cancelled it (acked, dropped), or it was aborted
   * otherwise (closing, a lost channel: left unacked, the broker gets it back).
   */
  #startsLate(acks: AckBatcher, message: AmqpMessageLike, ctx: RequestContext): boolean {
    const expired = isExpired(ctx.deadline);
    if (!expired && !ctx.aborted) return true;
    if (expired) this.parts.counters.expired++;
    if ((expired || ctx.cancelledByCaller) && !isClosed(acks.channel))
      acks.ack(message.deliveryTag);
    this.parts.running.finish(ctx);
    return false;
  }

  /** Runs a request that holds a slot. */
  #start(acks: AckBatcher, message: AmqpMessageLike, ctx: RequestContext): void {
    const { executor, responder, running } = this.parts;
    // Only requests with a message_id (idempotent calls) are looked up: no cost for others.
    const key =
      this.parts.dedupe === undefined
        ? undefined
        : dedupeKey(
            message.properties.messageId,
            message.properties.type,
            message.properties.userId,
          );
    let started: Outcome | undefined;
    if (key === undefined) {
      started = executor.execute(message, ctx, readWindow(message.properties.headers));
      if (started instanceof Replied && !responder.blocked) {
        // The handler answered at once: reply and ack in this tick, no promise in between.
        responder.publish(acks.channel, message, started.reply, started.headers);
        responder.settle(acks, message, started.poison);
        running.finish(ctx);
        return;
      }
    }
    ctx.onAbandon = () => acks.ack(message.deliveryTag);
    this.#run(acks, message, ctx, key, started).then(
      () => running.finish(ctx),
      () => running.finish(ctx),
    );
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
    started: Outcome | undefined,
  ): Promise<void> {
    const { executor, responder, counters, streams } = this.parts;
    const dedupe = key === undefined ? undefined : this.parts.dedupe;
    if (dedupe !== undefined && key !== undefined) {
      const earlier = await dedupe.earlierAnswer(key);
      if (earlier) {
        // A duplicate: the same reply again, to this delivery's reply_to; the handler does not run.
        counters.deduplicated++;
        await responder.reply(acks.channel, message, earlier.reply, earlier.headers);
        responder.settle(acks, message, earlier.poison);
        return;
      }
      if (isClosed(acks.channel)) {
        // Waited for a first delivery that was cut off with this one: both come back.
        dedupe.abandon(key);
        return;
      }
    }
    const outcome = await (started ??
      executor.execute(message, ctx, readWindow(message.properties.headers)));
    if (wasAbandoned(ctx)) {
      // Acked unanswered past its deadline (the sweep): nobody waits for this any more.
      if (key !== undefined) dedupe?.abandon(key);
      if (outcome instanceof Streamed) closeIterable(outcome.source);
      return;
    }
    if (outcome instanceof Streamed) {
      // Streams are not kept for duplicates: a duplicate runs the handler again.
      if (key !== undefined) dedupe?.abandon(key);
      const end = await streams.send(acks.channel, message, ctx, outcome.source, outcome.window);
      if (wasAbandoned(ctx)) return;
      await responder.reply(acks.channel, message, end.reply, end.headers);
      acks.ack(message.deliveryTag);
      return;
    }
    const published = await responder.reply(acks.channel, message, outcome.reply, outcome.headers);
    if (dedupe !== undefined && key !== undefined) {
      // Kept only if it went out: a handler cut off by a lost channel runs again.
      if (published) dedupe.complete(key, keptAnswer(outcome), dedupe.expiresAt(ctx.deadline));
      else dedupe.abandon(key);
    }
    responder.settle(acks, message, outcome.poison);
  }
}

/** Reads `abandoned` afresh: the sweep sets it while a handler awaits. */
function wasAbandoned(ctx: RequestContext): boolean {
  return ctx.abandoned;
}
