/**
 * Which queues a caller may send batches to by default (docs/decisions.md, D36): a queue
 * whose every consumer is a server that says it reads batches. Learnt per queue by asking
 * the queue's rabbit-rpc instances to describe themselves (their answers carry `batch`,
 * docs/protocol.md) and comparing their number with the queue's consumer count (a passive
 * `queue.declare`). A foreign consumer (the seed's pika server, a Go server) never
 * answers, so the counts differ and nothing is batched to that queue.
 *
 * The hot path asks {@link BatchPeers.canBatch}, which never waits: a queue not checked yet
 * is "not now", and the check runs in the background, from the second call to the queue
 * on. Checks repeat while a queue is used.
 */
import {
  DESCRIBE_CONTROL,
  readDescribeReply,
  type InstanceDescription,
} from '../protocol/describe.js';
import { CONTROL_EXCHANGE, CONTROL_HEADER } from '../protocol/names.js';
import type { LazyChannel } from '../transport/lazy-channel.js';
import type { AmqpChannelLike } from '../transport/types.js';
import { MORE, type MultiReply } from './multi-reply.js';

/** What the checks need of the connection: narrow, so that a unit test can fake it. */
export interface BatchPeerPorts {
  /** The queue's consumers now; rejects when the queue does not exist or cannot be seen. */
  consumerCount(queue: string): Promise<number>;
  /**
   * The descriptions of the queue's instances that answer a describe request within
   * `timeoutMs`, one per answering server; resolves early once `max` have answered.
   */
  describe(queue: string, max: number, timeoutMs: number): Promise<readonly InstanceDescription[]>;
}

/** How to batch to a queue whose every consumer reads batches. */
export interface BatchPlan {
  /** Its servers (all rabbit-rpc, all reading batches): a tick's calls split over as many. */
  readonly servers: number;
  /**
   * Most calls in one batch: the smallest of what its servers read in one batch and run at
   * once (`prefetch`), so that a batch does not hold more calls on one server than it runs.
   */
  readonly maxCalls: number;
  /** Most bytes in one batch, the smallest any of its servers reads. */
  readonly maxBytes: number;
}

export interface BatchPeerOptions {
  /** How often a queue in use has its consumer count checked again. */
  readonly recheckMs: number;
  /** How often, at most, its servers are described again with an unchanged count. */
  readonly redescribeMs: number;
  /** How long a describe collects answers (it ends early once every consumer answered). */
  readonly describeTimeoutMs: number;
  /** Where a failed check is said (never thrown: it only means "not batched"). */
  readonly onCheckFailed?: (queue: string, error: unknown) => void;
}

export const BATCH_PEER_DEFAULTS: BatchPeerOptions = {
  recheckMs: 2_000,
  redescribeMs: 20_000,
  describeTimeoutMs: 1_000,
};

/** What is known of one queue. */
class QueuePeers {
  /** Undefined: not (or not yet) known to be served only by servers that read batches. */
  plan: BatchPlan | undefined;
  /** When the count was last checked; a check is under way when `checking`. */
  checkedAt = -Infinity;
  describedAt = -Infinity;
  /** The consumer count the plan was made for. */
  consumers = -1;
  checking = false;
  /** Bumped by {@link BatchPeers.refused}: a check started before it does not count. */
  generation = 0;
}

export class BatchPeers {
  readonly #ports: BatchPeerPorts;
  readonly #options: BatchPeerOptions;
  readonly #queues = new Map<string, QueuePeers>();
  #closed = false;

  constructor(ports: BatchPeerPorts, options: BatchPeerOptions = BATCH_PEER_DEFAULTS) {
    this.#ports = ports;
    this.#options = options;
  }

  /**
   * The plan for `queue` if calls to it may go in batches now, else undefined; starts a
   * check in the background when the queue is new or its last check is old. Never waits.
   */
  canBatch(queue: string, now: number): BatchPlan | undefined {
    const peers = this.#queues.get(queue);
    if (peers === undefined) {
      // The first call to a queue starts no check: a program that makes one call (the CLI)
      // never pays for one. The second does.
      if (!this.#closed) this.#queues.set(queue, new QueuePeers());
      return undefined;
    }
    if (!peers.checking && now - peers.checkedAt >= this.#options.recheckMs) {
      this.#check(queue, peers, now);
    }
    return peers.plan;
  }

  /**
   * A batch to `queue` came back unread (a plain error reply, a return): stop batching to
   * it until a new check, which starts at the next call, says otherwise.
   */
  refused(queue: string): void {
    const peers = this.#queues.get(queue);
    if (peers === undefined) return;
    peers.plan = undefined;
    peers.consumers = -1;
    peers.checkedAt = -Infinity;
    peers.describedAt = -Infinity;
    peers.generation++;
  }

  /** Forgets everything; checks under way are ignored when they end. */
  close(): void {
    this.#closed = true;
    for (const peers of this.#queues.values()) peers.generation++;
    this.#queues.clear();
  }

  #check(queue: string, peers: QueuePeers, now: number): void {
    peers.checking = true;
    peers.checkedAt = now;
    const generation = peers.generation;
    this.#learn(queue, peers, now).then(
      (plan) => {
        peers.checking = false;
        if (peers.generation === generation) peers.plan = plan;
      },
      (error: unknown) => {
        peers.checking = false;
        if (peers.generation !== generation) return;
        // Unknown means not batched: a failed check never makes a queue eligible.
        peers.plan = undefined;
        peers.consumers = -1;
        this.#options.onCheckFailed?.(queue, error);
      },
    );
  }

  async #learn(queue: string, peers: QueuePeers, now: number): Promise<BatchPlan | undefined> {
    const consumers = await this.#ports.consumerCount(queue);
    // No consumer: whoever reads the requests later is unknown.
    if (consumers === 0) {
      peers.consumers = 0;
      return undefined;
    }
    // Every consumer must answer, each answer up to 1 MiB: past this many, the check would
    // let anyone who can consume the queue make every caller hold that much, so plain.
    if (consumers > MAX_BATCH_PEERS) {
      peers.consumers = consumers;
      return undefined;
    }
    const fresh = now - peers.describedAt < this.#options.redescribeMs;
    if (consumers === peers.consumers && fresh) return peers.plan;
    const described = await this.#ports.describe(queue, consumers, this.#options.describeTimeoutMs);
    // Counted again after the answers: a consumer that came or went meanwhile makes the
    // comparison meaningless, and the next check decides.
    const after = await this.#ports.consumerCount(queue);
    peers.describedAt = now;
    if (after !== consumers) {
      peers.consumers = -1;
      return undefined;
    }
    peers.consumers = consumers;
    return planFor(queue, described, consumers);
  }
}

/** The most consumers a queue may have for a caller to check them and batch to it. */
export const MAX_BATCH_PEERS = 64;

/**
 * The plan when every one of `consumers` is a server that said it reads batches; else
 * undefined. Servers that answered without `batch` (older ones, `batch: false`) and
 * consumers that did not answer (foreign ones) leave the queue unbatched.
 */
export function planFor(
  queue: string,
  described: readonly InstanceDescription[],
  consumers: number,
): BatchPlan | undefined {
  let readers = 0;
  let maxCalls = Infinity;
  let maxBytes = Infinity;
  for (const instance of described) {
    if (instance.queue !== queue || instance.batch === undefined) continue;
    readers++;
    maxCalls = Math.min(maxCalls, instance.batch.maxCalls, Math.max(instance.prefetch, 1));
    maxBytes = Math.min(maxBytes, instance.batch.maxBytes);
  }
  // More answers than consumers is not "all of them": something answered twice.
  if (readers === 0 || readers !== consumers) return undefined;
  return { servers: consumers, maxCalls, maxBytes };
}

/** What {@link connectionPorts} needs: the link and a way to make an internal multi-reply call. */
export interface BatchPeerLinks {
  /** A channel for passive declares, replaced when a failed declare closes it. */
  readonly peekChannel: LazyChannel;
  /** Whether the control exchange exists (no rabbit-rpc server ever ran: no describes). */
  exchangeExists(): Promise<boolean>;
  /** Sends a multi-reply request, unseen by interceptors and stats. */
  call(queue: string, timeoutMs: number, multi: MultiReply): Promise<unknown>;
}

/** The ports on a real connection (or the in-memory broker): passive declare and describe. */
export function connectionPorts(links: BatchPeerLinks): BatchPeerPorts {
  return {
    async consumerCount(queue) {
      const channel = await links.peekChannel.open();
      try {
        const { consumerCount } = await channel.queueDeclare(queue, { passive: true });
        return consumerCount;
      } catch (error) {
        // A missing queue (404) closes the channel: the next check opens another.
        if (channel.closed) links.peekChannel.forget();
        throw error;
      }
    },
    async describe(queue, max, timeoutMs) {
      if (!(await links.exchangeExists())) return [];
      const instances: InstanceDescription[] = [];
      // On the peek channel: a caller without write permission on the control exchange
      // then loses that channel, not the one its calls are published on.
      const publishChannel = () => links.peekChannel.open();
      await links.call(queue, timeoutMs, describeAnswers(instances, max, publishChannel));
      return instances;
    },
  };
}

/**
 * Collects describe answers, checked; one per server. Two servers of one connection share
 * an instance name but not a start time; an answer repeated (by a hostile peer) is counted
 * once, so it cannot make up for a consumer that did not answer.
 */
function describeAnswers(
  instances: InstanceDescription[],
  max: number,
  publishChannel: () => Promise<AmqpChannelLike>,
): MultiReply {
  const seen = new Set<string>();
  return {
    exchange: CONTROL_EXCHANGE,
    publishChannel,
    headers: { [CONTROL_HEADER]: DESCRIBE_CONTROL },
    internal: true,
    onMessage(message) {
      const description = readDescribeReply(message.body);
      if (description === undefined) return MORE;
      const key = JSON.stringify([description.instance, description.startedAt]);
      if (seen.has(key)) return MORE;
      seen.add(key);
      instances.push(description);
      return instances.length >= max ? instances : MORE;
    },
    onDeadline: () => instances,
    onNoRoute: () => instances,
  };
}
