import { randomUUID } from 'node:crypto';
import type { AmqpChannelLike, AmqpMessageLike } from '../transport/types.js';
import { fromAmqpError } from '../transport/errors.js';
import { atEndOfTick, batchWritesThisTick } from '../transport/amqp-client.js';
import type { ResolvedBatchOptions } from '../options/connect.js';
import { BATCH_CONTENT_TYPE, batchBody, readReplyBatch, requestEntry } from '../protocol/batch.js';
import { decodeReplyOutcome } from '../protocol/error-reply.js';
import { CONTENT_TYPE_JSON } from '../protocol/names.js';
import { batchRequestProperties } from '../protocol/request.js';
import { RpcError } from '../errors.js';
import type { BatchPeers } from './batch-peers.js';
import type { BatchableCall, EntryParts, PendingCall, PendingCalls, SentBatch } from './pending.js';

/**
 * Requests larger than this go on their own even with batching on: the broker's cost per
 * message is small next to theirs, and joining them as text would only add copies.
 */
export const MAX_BATCHED_REQUEST_BYTES = 16 * 1024;

/** What the {@link Batcher} needs of the publishing side. */
export interface BatchPort {
  /** The reply address of requests published now. */
  readonly replyTo: string;
  /** Publishes one call on its own. */
  publishOne(channel: AmqpChannelLike, call: PendingCall): void;
  /**
   * True when the connection went and replies survive it: a request whose publish failed
   * may be in its queue, and its reply would still come.
   */
  readonly repliesOutliveConnection: boolean;
  /** Stops publishing on `channel`; the next call opens a new one. */
  dropPublishChannel(channel: AmqpChannelLike): void;
}

/** Calls to one queue waiting for the end of the tick, to go out as one batch. */
interface OpenBatch {
  readonly queue: string;
  readonly channel: AmqpChannelLike;
  readonly calls: BatchableCall[];
  /** Bytes of the batch body: the entries, their commas and the brackets. */
  bytes: number;
  /** How to split the calls, learnt when a second call joins (a lone call needs none). */
  limits: BatchLimits | undefined;
}

/** How one tick's calls to a queue split into batches. */
interface BatchLimits {
  /** Servers of the queue (1 without negotiation): the calls split over as many batches. */
  readonly servers: number;
  /** Most calls in one batch. */
  readonly perBatch: number;
  /** Most bytes in all of them: one batch's worth per server. */
  readonly maxBytes: number;
}

/**
 * Batching: the calls of one tick to one queue go out as batches (docs/protocol.md,
 * "Batches"); a call alone in its tick goes as usual. With negotiation (the default, D36)
 * only to queues that {@link BatchPeers} knows read batches, split per server.
 */
export class Batcher {
  readonly #limits: ResolvedBatchOptions;
  /** Undefined with `batch: true`: every queue is batched to without asking. */
  readonly #peers: BatchPeers | undefined;
  readonly #pending: PendingCalls;
  readonly #port: BatchPort;
  readonly #userId: string | undefined;
  /**
   * The first call of this tick while it is alone: held without a batch of its own, since
   * most ticks of a caller that waits for each reply carry one call (the common case costs
   * no map and no batch object). A second call moves it into {@link #open}.
   */
  #lone: BatchableCall | undefined;
  #loneChannel: AmqpChannelLike | undefined;
  /** Batches being filled in this tick, by queue. */
  readonly #open = new Map<string, OpenBatch>();
  /** A flush at the end of this tick is arranged. */
  #flushing = false;
  readonly #flushAll = (): void => {
    this.#flushing = false;
    const lone = this.#lone;
    const channel = this.#loneChannel;
    if (lone !== undefined && channel !== undefined) {
      this.#lone = undefined;
      this.#loneChannel = undefined;
      if (this.#pending.isPending(lone)) this.#port.publishOne(channel, lone);
    }
    if (this.#open.size > 0) for (const open of this.#open.values()) this.#flush(open);
  };

  constructor(
    limits: ResolvedBatchOptions,
    peers: BatchPeers | undefined,
    pending: PendingCalls,
    port: BatchPort,
    userId: string | undefined,
  ) {
    this.#limits = limits;
    this.#peers = peers;
    this.#pending = pending;
    this.#port = port;
    this.#userId = userId;
  }

  /**
   * What the call needs to travel as a batch entry when it may travel in a batch (small
   * JSON, to a queue known to read batches when negotiating), else undefined. The entry
   * itself is written only if another call joins it. Never waits (`now`: the call's start).
   */
  entryPartsFor(
    call: PendingCall,
    now: number,
    deadline: number,
    method: string | undefined,
    headers: Readonly<Record<string, string | number | boolean>> | undefined,
  ): EntryParts | undefined {
    if (
      call.properties.contentType !== CONTENT_TYPE_JSON ||
      call.body.length > Math.min(this.#limits.maxBytes / 2, MAX_BATCHED_REQUEST_BYTES) ||
      (this.#peers !== undefined && this.#peers.canBatch(call.queue, now) === undefined)
    ) {
      return undefined;
    }
    return { deadline, method, headers };
  }

  /**
   * Adds a call to its queue's calls of this tick; they go out at the end of it, or at once
   * when full (one full batch per server) or when the call's entry would not fit.
   */
  add(channel: AmqpChannelLike, call: BatchableCall): void {
    if (this.#lone === undefined && this.#open.size === 0) {
      // Alone so far: its entry is written only if another call joins it.
      this.#lone = call;
      this.#loneChannel = channel;
      this.#flushAtEndOfTick(channel);
      return;
    }
    this.#joinLone();
    let open = this.#open.get(call.queue);
    if (open && open.channel !== channel) {
      this.#flush(open);
      open = undefined;
    }
    if (!open) {
      this.#openBatch(channel, call.queue).calls.push(call);
      return;
    }
    const first = open.calls[0];
    if (open.calls.length === 1 && first) open.bytes += entryOf(first).length + 1;
    const limits = (open.limits ??= this.#limitsFor(call.queue));
    // An entry and the comma after it.
    const entryBytes = entryOf(call).length + 1;
    if (open.bytes + entryBytes > limits.maxBytes) {
      this.#flush(open);
      this.add(channel, call);
      return;
    }
    open.calls.push(call);
    open.bytes += entryBytes;
    if (open.calls.length >= limits.perBatch * limits.servers) this.#flush(open);
  }

  /** A second call came in this tick: the lone call becomes its queue's open batch. */
  #joinLone(): void {
    const lone = this.#lone;
    const channel = this.#loneChannel;
    if (lone === undefined || channel === undefined) return;
    this.#lone = undefined;
    this.#loneChannel = undefined;
    this.#openBatch(channel, lone.queue).calls.push(lone);
  }

  /** Starts collecting a tick's calls to `queue`. */
  #openBatch(channel: AmqpChannelLike, queue: string): OpenBatch {
    const open: OpenBatch = {
      queue,
      channel,
      calls: [],
      bytes: 1 /* the brackets */,
      limits: undefined,
    };
    this.#flushAtEndOfTick(channel);
    this.#open.set(queue, open);
    return open;
  }

  /**
   * The tick's calls go out when it ends, right before its frames are written: no
   * microtask of their own, and their publishes join that write.
   */
  #flushAtEndOfTick(channel: AmqpChannelLike): void {
    if (this.#flushing) return;
    this.#flushing = true;
    atEndOfTick(channel.connection, this.#flushAll);
  }

  /** How this tick's calls to `queue` split: the plan is asked once per queue and tick. */
  #limitsFor(queue: string): BatchLimits {
    const plan = this.#peers?.canBatch(queue, Date.now());
    const servers = plan?.servers ?? 1;
    return {
      servers,
      perBatch: Math.min(this.#limits.maxCalls, plan?.maxCalls ?? Infinity),
      maxBytes: Math.min(this.#limits.maxBytes, plan?.maxBytes ?? Infinity) * servers,
    };
  }

  /**
   * Publishes a tick's calls to one queue: alone as usual, several as batches. With
   * negotiation, split into one batch per server of the queue (the broker gives each
   * consumer its turn), each of at most what one server runs at once (D36).
   */
  #flush(open: OpenBatch): void {
    const queue = open.queue;
    this.#open.delete(queue);
    const only = open.calls.length === 1 ? open.calls[0] : undefined;
    if (only) {
      // The common case of a call alone in its tick: no batch, nothing to sort out.
      if (this.#pending.isPending(only)) this.#port.publishOne(open.channel, only);
      return;
    }
    // Calls settled meanwhile (cancelled, timed out) are left out.
    const calls = open.calls.filter((call) => this.#pending.isPending(call));
    const channel = open.channel;
    const { servers, perBatch, maxBytes: allBytes } = (open.limits ??= this.#limitsFor(queue));
    // Asked again: a batch refused since the tick began stops batching to the queue.
    const refused = this.#peers !== undefined && !this.#peers.canBatch(queue, Date.now());
    if (calls.length < 2 || channel.closed || refused) {
      for (const call of calls) this.#port.publishOne(channel, call);
      return;
    }
    const maxBytes = allBytes / servers;
    const count = Math.max(
      Math.ceil(calls.length / perBatch),
      Math.min(servers, Math.floor(calls.length / 2)),
    );
    const size = Math.ceil(calls.length / count);
    let chunk: BatchableCall[] = [];
    // The brackets around the entries; each entry counts its comma.
    let bytes = 1;
    for (const call of calls) {
      const entryBytes = entryOf(call).length + 1;
      if (chunk.length >= size || (chunk.length > 0 && bytes + entryBytes > maxBytes)) {
        this.#publish(channel, queue, chunk);
        chunk = [];
        bytes = 1;
      }
      chunk.push(call);
      bytes += entryBytes;
    }
    this.#publish(channel, queue, chunk);
  }

  /** Publishes calls as one batch (a single call as a plain request). */
  #publish(channel: AmqpChannelLike, queue: string, calls: readonly BatchableCall[]): void {
    if (calls.length === 1) {
      this.#port.publishOne(channel, calls[0] as PendingCall);
      return;
    }
    const batch: SentBatch = {
      id: randomUUID(),
      queue,
      callIds: calls.map((call) => call.id),
      unsettled: calls.length,
    };
    this.#pending.batches.set(batch);
    this.#pending.batchesSent++;
    // The batch lives as long as its longest call; each entry carries its own deadline.
    let expirationMs = 0;
    for (const call of calls) {
      call.batch = batch;
      call.published = true;
      expirationMs = Math.max(expirationMs, Number(call.properties.expiration));
    }
    const properties = batchRequestProperties(
      BATCH_CONTENT_TYPE,
      batch.id,
      this.#port.replyTo,
      expirationMs,
      this.#userId,
    );
    const body = batchBody(calls.map(entryOf));
    batchWritesThisTick(channel.connection);
    channel.basicPublish('', queue, body, properties, true).catch((error: unknown) => {
      if (this.#port.repliesOutliveConnection) return;
      this.fail(batch, fromAmqpError(error, `publishing a batch to "${queue}" failed`));
      this.#port.dropPublishChannel(channel);
    });
  }

  /** Ends every call of a batch still pending with `outcome`. */
  fail(batch: SentBatch, outcome: RpcError): void {
    for (const id of batch.callIds) this.#pending.settle(id, outcome);
  }

  /**
   * A batch came back unrouted (basic.return): its calls fail, and the queue is batched to
   * no more until a check says otherwise.
   */
  onReturn(batch: SentBatch, routingKey: string): void {
    this.#peers?.refused(batch.queue);
    this.fail(
      batch,
      new RpcError(
        'UNAVAILABLE',
        `nothing can receive requests on "${routingKey}": no queue is bound to it`,
      ),
    );
  }

  /** Forgets what negotiation learnt; checks under way are ignored. */
  close(): void {
    this.#peers?.close();
  }

  /** A reply to a batch: the outcomes of several of its calls, or an error for all. */
  onReply(message: AmqpMessageLike, batch: SentBatch): void {
    if (message.properties.contentType !== BATCH_CONTENT_TYPE) {
      // A server that could not read the batch (an older one: INVALID_ARGUMENT). Anything
      // else is not an answer: never a value to turn into text (it could be any JSON).
      // Either way the queue has a server that does not read batches: none go there until
      // a check says otherwise.
      this.#peers?.refused(batch.queue);
      const outcome = decodeReplyOutcome(message);
      this.fail(
        batch,
        outcome instanceof RpcError
          ? outcome
          : new RpcError('INTERNAL', 'a reply to a batch of calls is not a batch reply'),
      );
      return;
    }
    let outcomes: Array<[string, unknown]>;
    try {
      outcomes = readReplyBatch(message.body);
    } catch (error) {
      this.fail(batch, RpcError.from(error, 'INTERNAL'));
      return;
    }
    for (const [id, outcome] of outcomes) {
      if (this.#pending.get(id)?.batch === batch) this.#pending.settle(id, outcome, true);
      else this.#pending.unmatchedReplies++;
    }
  }
}

/** A call's batch entry, written the first time it is needed. */
function entryOf(call: BatchableCall): string {
  const parts = call.entryParts;
  call.entry ??= requestEntry(call.id, parts.deadline, parts.method, parts.headers, call.body);
  return call.entry;
}
