import { decodeReplyOutcome, MORE, type MultiReply } from './caller.js';
import { RpcError } from './errors.js';
import { CONTROL_EXCHANGE, CONTROL_QUEUE_HEADER } from './protocol.js';

/** One server instance's answer to a broadcast. */
export type BroadcastReply<TReply = unknown> =
  | {
      /** The answering instance: its connection's control queue, unique while it runs. */
      readonly instance: string;
      readonly ok: true;
      readonly reply: TReply;
    }
  | {
      readonly instance: string;
      readonly ok: false;
      /** What the instance's handler threw, as the caller sees it. */
      readonly error: RpcError;
    };

/**
 * Collects the replies to one broadcast request: every reply that comes before the
 * deadline, or the first `max`. Nothing bound (no instance serves the queue) ends it at
 * once with no replies.
 */
export function collectReplies(max: number): {
  multi: MultiReply;
  replies: BroadcastReply[];
} {
  const replies: BroadcastReply[] = [];
  const multi: MultiReply = {
    exchange: CONTROL_EXCHANGE,
    headers: undefined,
    onMessage(message) {
      const header = message.properties.headers?.[CONTROL_QUEUE_HEADER];
      const instance = typeof header === 'string' ? header : '';
      const outcome = decodeReplyOutcome(message);
      replies.push(
        outcome instanceof RpcError
          ? { instance, ok: false, error: outcome }
          : { instance, ok: true, reply: outcome },
      );
      return replies.length >= max ? replies : MORE;
    },
    onDeadline: () => replies,
    onNoRoute: () => replies,
  };
  return { multi, replies };
}
