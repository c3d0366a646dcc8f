import { RpcError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RequestContext } from './context.js';
import type { ControlSender } from '../protocol/control.js';
import { cancelRunning, EarlyCancels } from './cancels.js';
import { Slots } from './slots.js';
import type { Counters } from './stats.js';

/** How long past its deadline a handler may run before its request is abandoned (sweep). */
export const ABANDON_AFTER_DEADLINE_MS = 2_000;

/**
 * The requests a server runs now, and its bound on them: every handler run, whatever its
 * origin, holds a slot of `slots` (broadcasts one of their own) until it finishes.
 */
export class Running {
  readonly active = new Set<RequestContext>();
  /** Requests and batch entries: at most `prefetch` handlers at once. */
  readonly slots: Slots;
  /** Cancels that came before their request. */
  readonly earlyCancels = new EarlyCancels();

  constructor(
    prefetch: number,
    private readonly counters: Counters,
    /** Called whenever a request finishes: closing waits for the last. */
    private readonly onFinished: () => void,
  ) {
    this.slots = new Slots(prefetch);
  }

  get size(): number {
    return this.active.size;
  }

  /** The request is done (answered, dropped or abandoned): its slot is free. */
  finish(ctx: RequestContext): void {
    ctx.finish();
    if (this.active.delete(ctx)) {
      ctx.slots?.give();
      ctx.slots = undefined;
    }
    this.onFinished();
  }

  abortAll(reason: RpcError): void {
    for (const ctx of this.active) ctx.abort(reason);
  }

  /**
   * The caller of `correlationId` cancelled: abort its handler if it runs here, else
   * remember the cancel (the request is dropped if it comes).
   */
  cancel(correlationId: string, from: ControlSender): void {
    this.counters.cancelled++;
    if (!cancelRunning(this.active, correlationId, from))
      this.earlyCancels.add(correlationId, from);
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
  sweep(queue: string, logger: Logger): void {
    if (this.active.size === 0) return;
    const limit = Date.now() - ABANDON_AFTER_DEADLINE_MS;
    for (const ctx of this.active) {
      if (ctx.deadline === undefined || ctx.deadline > limit || ctx.abandoned) continue;
      ctx.abandoned = true;
      this.counters.abandoned++;
      logger.warn(
        { queue, correlationId: ctx.correlationId, deadline: ctx.deadline },
        `a handler still runs ${ABANDON_AFTER_DEADLINE_MS} ms after its deadline: its request ` +
          'is acked unanswered to free its prefetch slot (handlers should stop when ctx.signal aborts)',
      );
      ctx.abort(new RpcError('DEADLINE_EXCEEDED', "the caller's deadline has passed"));
      ctx.onAbandon?.();
      this.finish(ctx);
    }
  }
}
