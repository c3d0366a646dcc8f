import type { AmqpMessageLike, AmqpProperties } from '../transport/types.js';
import type { ControlPlane } from '../control/control-plane.js';
import { RpcError } from '../errors.js';
import { readDeadline } from '../protocol/deadline.js';
import { CONTROL_QUEUE_HEADER } from '../protocol/names.js';
import { admitEnvelope, isExpired } from './admission.js';
import { RequestContext } from './context.js';
import { Replied, type Streamed } from './execute.js';
import type { ServerParts } from './parts.js';
import { Slots } from './slots.js';

/**
 * Broadcast requests (see `RpcConnection.broadcast`), the third origin of requests: admitted
 * like any (no early-cancel lookup: a broadcast is not cancelled by id), run, and answered
 * on the control channel with this instance's control queue in the reply. Not acked (the
 * control queue is consumed without acks) and never streamed.
 */
export class Broadcasts {
  /** No prefetch applies to broadcasts: a bound of their own, also `prefetch`. */
  readonly #slots: Slots;

  constructor(
    private readonly parts: ServerParts,
    private readonly control: ControlPlane,
  ) {
    this.#slots = new Slots(parts.options.prefetch);
  }

  handle(message: AmqpMessageLike): void {
    const deadline = readDeadline(message.properties.headers);
    if (admitEnvelope(deadline, undefined, message, undefined) !== undefined) return;
    const { running, options } = this.parts;
    const slots = this.#slots;
    const ctx = new RequestContext(this.parts.queue, message, deadline);
    if (slots.tryTake()) {
      ctx.slots = slots;
      running.active.add(ctx);
      this.#answer(message, ctx);
      return;
    }
    if (slots.waiting >= options.prefetch) {
      // No prefetch holds broadcasts back (the control queue has no acks): past this many
      // waiting, an instance answers at once instead of holding more of them in memory.
      const busy = new RpcError(
        'RESOURCE_EXHAUSTED',
        `this instance is running ${options.prefetch} broadcasts and has as many waiting`,
      );
      this.#send(message, this.parts.executor.failure(busy, ctx, false));
      return;
    }
    running.active.add(ctx);
    void slots.take().then(() => {
      ctx.slots = slots;
      if (isExpired(ctx.deadline) || ctx.aborted) running.finish(ctx);
      else this.#answer(message, ctx);
    });
  }

  #answer(message: AmqpMessageLike, ctx: RequestContext): void {
    const done = (outcome: Replied | Streamed | undefined): void => {
      if (outcome instanceof Replied) this.#send(message, outcome);
      this.parts.running.finish(ctx);
    };
    const outcome = this.parts.executor.execute(message, ctx, undefined);
    if (outcome instanceof Promise) outcome.then(done, () => done(undefined));
    else done(outcome);
  }

  #send(message: AmqpMessageLike, outcome: Replied): void {
    const { replyTo, correlationId } = message.properties;
    if (!replyTo) return;
    const properties: AmqpProperties = {
      contentType: outcome.reply.contentType,
      headers: { ...outcome.headers, [CONTROL_QUEUE_HEADER]: this.control.address ?? '' },
    };
    if (correlationId !== undefined) properties.correlationId = correlationId;
    this.control.reply(replyTo, outcome.reply.body, properties);
    this.parts.counters.replied++;
  }
}
