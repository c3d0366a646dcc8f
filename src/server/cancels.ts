import type { AmqpMessageLike } from '../transport/types.js';
import type { ControlSender } from '../protocol/control.js';
import { RpcError } from '../errors.js';
import { DIRECT_REPLY_QUEUE } from '../protocol/names.js';

/** How many cancels for requests not (yet) running a server remembers. */
export const MAX_EARLY_CANCELS = 1_000;

/** What a cancel or credit message is matched against: a running request's context. */
export interface CancelTarget {
  readonly correlationId: string | undefined;
  readonly userId: string | undefined;
  readonly replyTo: string | undefined;
  cancelledByCaller: boolean;
  abort(reason: RpcError): void;
}

/**
 * Aborts the running request a cancel is about, if one runs: only a call the cancel can be
 * verified to be about, the same user (`user_id`, checked by the broker) when the request
 * named one, and the same reply address when the cancel names one (another caller may use
 * the same id). False when none runs here (yet). A scan: no index to keep up per request.
 */
export function cancelRunning(
  running: Iterable<CancelTarget>,
  correlationId: string,
  from: ControlSender,
): boolean {
  for (const ctx of running) {
    if (ctx.correlationId === correlationId && sentBy(ctx, from)) {
      ctx.cancelledByCaller = true;
      ctx.abort(new RpcError('CANCELLED', 'the caller cancelled the call'));
      return true;
    }
  }
  return false;
}

/**
 * Cancels that came before their request: it is dropped unstarted when it arrives. Bounded
 * ({@link MAX_EARLY_CANCELS}, oldest forgotten first): anyone who may publish to the control
 * exchange can send cancels for ids that never come.
 */
export class EarlyCancels {
  readonly #keys = new Set<string>();
  readonly #max: number;

  constructor(max = MAX_EARLY_CANCELS) {
    this.#max = max;
  }

  get size(): number {
    return this.#keys.size;
  }

  /** Remembers a cancel for `correlationId` from `from`, for a request that may come later. */
  add(correlationId: string, from: ControlSender): void {
    const address = from.replyTo === undefined ? undefined : replyAddress(from.replyTo);
    this.#keys.add(earlyCancelKey(correlationId, address, from.userId));
    if (this.#keys.size > this.#max) {
      const [oldest] = this.#keys;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
  }

  /**
   * True (and forgotten) when a cancel for request `correlationId` came first, from its user
   * and naming its reply address or none.
   */
  take(correlationId: string, message: AmqpMessageLike): boolean {
    const address = replyAddress(message.properties.replyTo);
    const user = message.properties.userId;
    return (
      this.#keys.delete(earlyCancelKey(correlationId, address, user)) ||
      this.#keys.delete(earlyCancelKey(correlationId, undefined, user))
    );
  }
}

/**
 * A reply address as both sides know it: a Direct Reply-to caller publishes
 * `amq.rabbitmq.reply-to` and its server sees `amq.rabbitmq.reply-to.<token>`.
 */
export function replyAddress(replyTo: string | undefined): string {
  if (replyTo === undefined) return '';
  return replyTo.startsWith(`${DIRECT_REPLY_QUEUE}.`) ? DIRECT_REPLY_QUEUE : replyTo;
}

/**
 * Whether a control message can be about this request: sent by the request's user when the
 * request named one (an anonymous request accepts any), naming the request's reply address
 * when it names one.
 */
export function sentBy(
  request: { readonly userId: string | undefined; readonly replyTo: string | undefined },
  from: ControlSender,
): boolean {
  if (request.userId !== undefined && from.userId !== request.userId) return false;
  return from.replyTo === undefined || replyAddress(from.replyTo) === replyAddress(request.replyTo);
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
