/** Counters of one server; {@link RpcServer.stats} returns a copy. */
export interface ServerStats {
  /** Handlers running now. */
  active: number;
  /** Requests answered (success or error reply). */
  replied: number;
  /** Requests dropped unstarted because their deadline had passed. */
  expired: number;
  /** Times the server consumed again after a reconnect, a cancelled consumer or a channel error. */
  recoveries: number;
  /**
   * Cancels received: for a request running here (its `ctx.signal` aborts), or for one not
   * started yet (dropped if it comes; every instance serving the queue counts those).
   */
  cancelled: number;
  /** Duplicate requests (same `message_id`) answered with the first one's reply, unrun. */
  deduplicated: number;
  /**
   * Requests whose AMQP properties could not be decoded (a header table nested too deep, a
   * malformed field): rejected without requeue, so dead-lettered where the queue has a
   * dead-letter exchange, never run and never answered (their `reply_to` is unreadable).
   */
  undecodable: number;
  /**
   * Requests given up on because their handler still ran 2 s after the caller's deadline
   * (it ignored `ctx.signal`): acked unanswered, so the handler no longer holds a prefetch
   * slot. docs/decisions.md, D30.
   */
  abandoned: number;
}

/**
 * The counters the parts of a server share (one object, mutable fields: counting costs no
 * call and no allocation on the hot path). `describeDropped` is not in {@link ServerStats}:
 * describe requests dropped over the describe bound (docs/security.md).
 */
export class Counters {
  replied = 0;
  expired = 0;
  recoveries = 0;
  cancelled = 0;
  deduplicated = 0;
  undecodable = 0;
  abandoned = 0;
  describeDropped = 0;
}
