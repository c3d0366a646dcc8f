import type { AmqpChannelLike, AmqpField, AmqpMessageLike } from '../transport/types.js';

/**
 * A call answered by several messages (a stream, a broadcast) instead of one reply. The
 * caller hands it each message for the call; it says when the call is over.
 */
export interface MultiReply {
  /** Where the request goes: `''` (the default exchange) or the control exchange. */
  readonly exchange: string;
  /** Extra request headers (the stream window). */
  readonly headers: Readonly<Record<string, AmqpField>> | undefined;
  /**
   * A message for the call: returns the call's outcome when it is over, else {@link MORE}.
   * `replyTo` is the reply address the request named.
   */
  onMessage(message: AmqpMessageLike, id: string, replyTo: string): unknown;
  /** The outcome when the deadline passes; DEADLINE_EXCEEDED when undefined. */
  onDeadline?(): unknown;
  /** The outcome when nothing could receive the request (basic.return). */
  onNoRoute?(): unknown;
  /**
   * The library's own request (the describe behind default batching, D36): not counted in
   * the connection's stats, never cancelled on the server.
   */
  readonly internal?: boolean;
  /**
   * A channel of its own to publish the request on, instead of the caller's: a refused
   * publish (no write permission on the control exchange) closes the channel it was on, and
   * on the caller's it would fail the calls published there meanwhile. Unconfirmed: a
   * refused request gets no answers and ends at its deadline.
   */
  readonly publishChannel?: () => Promise<AmqpChannelLike>;
  /** The caller cancelled: tell the server (best effort). */
  onCancel?(id: string, replyTo: string): void;
}

/** Returned by {@link MultiReply.onMessage} while more messages are to come. */
export const MORE: unique symbol = Symbol('more');
