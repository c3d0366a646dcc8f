import type { AmqpMessageLike } from '../transport/types.js';
import { RpcError } from '../errors.js';
import { decodeBody } from '../protocol/codec.js';
import { readRequestBatch, type BatchEntry } from '../protocol/batch.js';
import type { EarlyCancels } from './cancels.js';

/*
 * The one admission path of every request, whatever its origin (a plain delivery, a batch
 * and each of its entries, a broadcast):
 *
 *   1. admitEnvelope: the silent drops, at arrival. An expired deadline (counted `expired`;
 *      running the handler would be wasted work), then a cancel that came first (broadcasts
 *      skip this lookup: a broadcast is not cancelled by id). Dropped requests are acked
 *      (never answered): nobody waits for an answer.
 *   2. admitCall (admitBatch for a batch as a whole): the refusals, each answered with an
 *      error reply, once the request holds a slot: no user_id under `requireUserId`
 *      (UNAUTHENTICATED), too large (RESOURCE_EXHAUSTED), undecodable (INVALID_ARGUMENT).
 *      Whether a refusal is poison (the request itself is at fault: dead-lettered where the
 *      queue has a dead-letter exchange, else acked) is decided here, where it is made.
 *
 * Pure: no broker, no server state but the set of early cancels (a lookup forgets it).
 */

/** Why a request was dropped unstarted, unanswered. */
export type Dropped = 'expired' | 'cancelled';

/** A request refused with an error reply. */
export class Refusal {
  constructor(
    readonly error: RpcError,
    /** The request itself is at fault (too large, malformed): dead-lettered where configured. */
    readonly poison: boolean,
  ) {}
}

/**
 * What {@link admitCall} returns: a {@link Refusal}, or for a request it admits its decoded
 * payload as is (no wrapper: the hot path allocates nothing for it), which is never a
 * Refusal (a decoded body is JSON, a string or a Buffer). Tell them with `instanceof`.
 */
export type RefusalOrRequest = unknown;

/** A deadline (epoch ms) that has passed; no deadline never passes. */
export function isExpired(deadline: number | undefined, now: () => number = Date.now): boolean {
  return deadline !== undefined && deadline <= now();
}

/**
 * The silent drops, in this order: an expired `deadline`, then a cancel for `correlationId`
 * that came before the request (and is forgotten now). `cancels` undefined: no lookup (a
 * broadcast). Undefined: the request goes on.
 */
export function admitEnvelope(
  deadline: number | undefined,
  correlationId: string | undefined,
  message: AmqpMessageLike,
  cancels: EarlyCancels | undefined,
  now: () => number = Date.now,
): Dropped | undefined {
  if (isExpired(deadline, now)) return 'expired';
  if (
    cancels !== undefined &&
    cancels.size > 0 &&
    correlationId !== undefined &&
    cancels.take(correlationId, message)
  ) {
    return 'cancelled';
  }
  return undefined;
}

/**
 * The refusals of one call, in this order: no `user_id` when required (UNAUTHENTICATED,
 * not poison: refused, not malformed), a body over `maxPayloadBytes` (RESOURCE_EXHAUSTED,
 * poison), a body that does not decode (INVALID_ARGUMENT, poison). Else the decoded request.
 */
export function admitCall(
  message: AmqpMessageLike,
  requireUserId: boolean,
  maxPayloadBytes: number,
): RefusalOrRequest {
  if (requireUserId && !message.properties.userId) return unauthenticated();
  const size = message.body?.length ?? 0;
  if (size > maxPayloadBytes) {
    const text = `request of ${size} bytes exceeds maxPayloadBytes (${maxPayloadBytes})`;
    return new Refusal(new RpcError('RESOURCE_EXHAUSTED', text), true);
  }
  try {
    return decodeBody(message.body, message.properties.contentType, 'INVALID_ARGUMENT');
  } catch (thrown) {
    return new Refusal(RpcError.from(thrown, 'UNKNOWN'), true);
  }
}

/** A server's bounds on batches (`batch: false`: it takes none). */
export type BatchLimits = false | { readonly maxBytes: number; readonly maxEntries: number };

/**
 * The refusals of a batch as a whole (one error reply fails all its calls), in this order:
 * no `user_id` when required (UNAUTHENTICATED), batches not taken (UNIMPLEMENTED), too many
 * bytes (RESOURCE_EXHAUSTED), malformed (INVALID_ARGUMENT), too many calls
 * (RESOURCE_EXHAUSTED). Only a malformed batch is poison: a batch over a bound is well
 * formed, and its calls may fit another server's bounds. Else its entries, each admitted on
 * its own afterwards ({@link admitEnvelope}; their payloads are decoded already).
 */
export function admitBatch(
  message: AmqpMessageLike,
  requireUserId: boolean,
  maxPayloadBytes: number,
  limits: BatchLimits,
): Refusal | BatchEntry[] {
  if (requireUserId && !message.properties.userId) return unauthenticated();
  if (limits === false) {
    const text = 'this server does not take batches (batch: false)';
    return new Refusal(new RpcError('UNIMPLEMENTED', text), false);
  }
  const size = message.body?.length ?? 0;
  const maxBytes = Math.min(maxPayloadBytes, limits.maxBytes);
  if (size > maxBytes) {
    const text = `batch of ${size} bytes exceeds this server's limit (${maxBytes})`;
    return new Refusal(new RpcError('RESOURCE_EXHAUSTED', text), false);
  }
  let entries: BatchEntry[];
  try {
    entries = readRequestBatch(message.body);
  } catch (thrown) {
    const error = RpcError.from(thrown, 'UNKNOWN');
    return new Refusal(error, error.code === 'INVALID_ARGUMENT');
  }
  if (entries.length > limits.maxEntries) {
    const text = `batch of ${entries.length} calls exceeds this server's limit (${limits.maxEntries})`;
    return new Refusal(new RpcError('RESOURCE_EXHAUSTED', text), false);
  }
  return entries;
}

function unauthenticated(): Refusal {
  const text = 'this server requires a user_id on requests';
  return new Refusal(new RpcError('UNAUTHENTICATED', text), false);
}
