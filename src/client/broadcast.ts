import { decodeReplyOutcome } from '../protocol/error-reply.js';
import { MORE, type MultiReply } from './multi-reply.js';
import { RpcError } from '../errors.js';
import { CONTROL_EXCHANGE, CONTROL_QUEUE_HEADER } from '../protocol/names.js';

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
  /** Instances that answered: each answers once, so a repeat is not kept. */
  const answered = new Set<string>();
  const limit = Math.min(max, MAX_BROADCAST_REPLIES);
  const multi: MultiReply = {
    exchange: CONTROL_EXCHANGE,
    headers: undefined,
    onMessage(message) {
      const header = message.properties.headers?.[CONTROL_QUEUE_HEADER];
      const instance = typeof header === 'string' ? header : '';
      if (answered.has(instance)) return MORE;
      answered.add(instance);
      const outcome = decodeReplyOutcome(message);
      replies.push(
        outcome instanceof RpcError
          ? { instance, ok: false, error: outcome }
          : { instance, ok: true, reply: outcome },
      );
      return replies.length >= limit ? replies : MORE;
    },
    onDeadline: () => replies,
    onNoRoute: () => replies,
  };
  return { multi, replies };
}

/**
 * The most replies one broadcast keeps, whatever its `max`: anything that can bind a queue
 * to the control exchange receives broadcasts and can answer them, so a caller bounds what
 * it holds (docs/security.md).
 */
const MAX_BROADCAST_REPLIES = 10_000;
