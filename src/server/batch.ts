import type { AmqpMessageLike } from '../transport/types.js';
import type { AckBatcher } from '../transport/ack-batch.js';
import {
  BATCH_CONTENT_TYPE,
  batchBody,
  entryMessage,
  replyEntry,
  type BatchEntry,
} from '../protocol/batch.js';
import { MESSAGE_HEADER, STATUS_HEADER } from '../protocol/names.js';
import { admitBatch, admitEnvelope, Refusal } from './admission.js';
import { RequestContext } from './context.js';
import { Replied } from './execute.js';
import type { ServerParts } from './parts.js';
import { isClosed } from './respond.js';

/**
 * A batch of calls in one message (docs/protocol.md, "Batches"), admitted as a whole
 * ({@link admitBatch}), then each entry as a request of its own (its own deadline, context,
 * cancellation: {@link admitEnvelope}); replies ready in the same tick go back together in
 * one message; the batch is acked once every call is answered.
 */
export function runBatch(parts: ServerParts, acks: AckBatcher, message: AmqpMessageLike): void {
  const { options, executor, responder, running, counters } = parts;
  const channel = acks.channel;
  const entries = admitBatch(
    message,
    options.requireUserId,
    executor.maxPayloadBytes,
    options.batch,
  );
  if (entries instanceof Refusal) {
    // The whole batch is refused: one error reply to the batch, which fails all its calls.
    const [reply, headers] = executor.errorReply(entries.error, message.properties.correlationId);
    responder.publish(channel, message, reply, headers);
    responder.settle(acks, message, entries.poison);
    return;
  }
  let waiting = entries.length;
  let ready: string[] = [];
  let flushing = false;
  let sent: Promise<unknown> = Promise.resolve();
  const flush = (): void => {
    flushing = false;
    if (ready.length > 0) {
      const body = batchBody(ready);
      const answers = ready.length;
      ready = [];
      const reply = { body, contentType: BATCH_CONTENT_TYPE };
      sent = sent.then(() => responder.reply(channel, message, reply, undefined, answers));
    }
    if (waiting === 0) {
      sent.then(
        () => responder.settle(acks, message, false),
        () => undefined,
      );
    }
  };
  const answer = (entry: BatchEntry, outcome: Replied | undefined): void => {
    waiting--;
    if (outcome) {
      const headers = outcome.headers;
      const status = headers?.[STATUS_HEADER];
      const text = headers?.[MESSAGE_HEADER];
      ready.push(
        replyEntry(
          entry.id,
          typeof status === 'string' ? status : undefined,
          typeof text === 'string' ? text : undefined,
          outcome.reply.contentType,
          outcome.reply.body,
        ),
      );
    }
    if (!flushing) {
      flushing = true;
      queueMicrotask(flush);
    }
  };
  /** Runs one entry; it holds a slot, given back when it is answered. */
  const start = (entry: BatchEntry): void => {
    const dropped = admitEnvelope(entry.deadline, entry.id, message, running.earlyCancels);
    if (dropped !== undefined) {
      if (dropped === 'expired') counters.expired++;
      running.slots.give();
      answer(entry, undefined);
      return;
    }
    const ctx = new RequestContext(parts.queue, entryMessage(message, entry), entry.deadline);
    ctx.slots = running.slots;
    running.active.add(ctx);
    ctx.onAbandon = () => answer(entry, undefined);
    const outcome = executor.invoke(entry.payload, ctx, undefined);
    if (outcome instanceof Replied) {
      answer(entry, outcome);
      running.finish(ctx);
    } else {
      // Never a stream: a batched call has no window (FAILED_PRECONDITION), so a Replied.
      // invoke never rejects; were it to, the batch must still be acked once all are done.
      const done = (settled: unknown): void => {
        if (ctx.abandoned) return; // answered (with nothing) when it was abandoned
        answer(entry, settled instanceof Replied ? settled : undefined);
        running.finish(ctx);
      };
      Promise.resolve(outcome).then(done, done);
    }
  };
  // Entries start one by one as slots free up, in turn with other requests: a batch of
  // thousands runs no more handlers at once than `prefetch` plain requests would, and
  // waits with one pending take(), not one per entry.
  let next = 0;
  const startNext = (): boolean => {
    // The channel is gone: the batch comes back from the broker, unacked; stop here.
    if (isClosed(channel)) {
      running.slots.give();
      return false;
    }
    start(entries[next++] as BatchEntry);
    return true;
  };
  const pump = (): void => {
    while (next < entries.length) {
      if (!running.slots.tryTake()) {
        void running.slots.take().then(() => {
          if (startNext()) pump();
        });
        return;
      }
      if (!startNext()) return;
    }
  };
  pump();
  if (entries.length === 0) flush();
}
