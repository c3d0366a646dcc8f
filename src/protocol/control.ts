/**
 * Control messages (docs/protocol.md, "Control messages"), both halves: the caller writes
 * cancels and stream credit; the serving side reads those, broadcast requests and describe
 * requests from its control queue.
 */
import type { AmqpMessageLike, AmqpProperties } from '../transport/types.js';
import { DESCRIBE_CONTROL } from './describe.js';
import { CANCEL_REPLY_TO_HEADER, CONTROL_HEADER, CREDIT_HEADER } from './names.js';

/**
 * Who sent a control message, as far as it can be checked: `userId` is the message's AMQP
 * `user_id` (the broker refuses one that is not the publisher's login), `replyTo` the reply
 * address it names (header `rpc-reply-to`). A server honours a control message for a call
 * only when both match the call's request (docs/security.md).
 */
export interface ControlSender {
  readonly userId: string | undefined;
  readonly replyTo: string | undefined;
}

/** A control message, read: what it asks and, for a call's cancel or credit, who asks. */
export type ControlMessage =
  | { readonly kind: 'broadcast' }
  | { readonly kind: 'describe' }
  | { readonly kind: 'cancel'; readonly correlationId: string; readonly from: ControlSender }
  | {
      readonly kind: 'credit';
      readonly correlationId: string;
      readonly total: number;
      readonly from: ControlSender;
    };

const BROADCAST: ControlMessage = { kind: 'broadcast' };
const DESCRIBE: ControlMessage = { kind: 'describe' };

/**
 * The properties of a cancel (no `total`) or a credit grant for call `correlationId`.
 * `userId` lets the broker vouch for the sender; `replyTo` names the call's reply address,
 * in a header: RabbitMQ refuses a publish whose reply_to is Direct Reply-to from a channel
 * that does not consume it.
 */
export function controlProperties(
  correlationId: string,
  userId: string | undefined,
  replyTo: string,
  total?: number,
): AmqpProperties {
  const headers: NonNullable<AmqpProperties['headers']> =
    total === undefined
      ? { [CONTROL_HEADER]: 'cancel' }
      : { [CONTROL_HEADER]: 'credit', [CREDIT_HEADER]: total };
  if (replyTo) headers[CANCEL_REPLY_TO_HEADER] = replyTo;
  const properties: AmqpProperties = { correlationId, headers };
  if (userId !== undefined) properties.userId = userId;
  return properties;
}

/** Reads a message from a control queue; undefined for one that asks nothing usable. */
export function readControlMessage(message: AmqpMessageLike): ControlMessage | undefined {
  const { correlationId, headers, userId } = message.properties;
  const kind = headers?.[CONTROL_HEADER];
  // No control header: a broadcast request, the call itself.
  if (kind === undefined) return BROADCAST;
  if (kind === DESCRIBE_CONTROL) return DESCRIBE;
  if (correlationId === undefined) return undefined;
  const replyTo = headers?.[CANCEL_REPLY_TO_HEADER];
  const from: ControlSender = {
    userId,
    replyTo: typeof replyTo === 'string' ? replyTo : undefined,
  };
  if (kind === 'cancel') return { kind, correlationId, from };
  if (kind === 'credit') {
    const total = readCredit(headers?.[CREDIT_HEADER]);
    return total === undefined ? undefined : { kind, correlationId, total, from };
  }
  return undefined;
}

/**
 * A credit header's total, if it is an integer. Never `Number(value)` on what a peer sent:
 * a table whose `valueOf` and `toString` are not functions makes that throw.
 */
function readCredit(value: unknown): number | undefined {
  const total = typeof value === 'bigint' ? Number(value) : value;
  return typeof total === 'number' && Number.isSafeInteger(total) ? total : undefined;
}
