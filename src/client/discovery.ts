import { createHash } from 'node:crypto';
import type { Caller } from './caller.js';
import { MORE, type MultiReply } from './multi-reply.js';
import type { ControlPlane } from '../control/control-plane.js';
import { RpcError } from '../errors.js';
import { checkOptionNames, optionNames } from '../option-names.js';
import { checkQueueName, resolveMax, resolveTimeoutMs } from '../options/call.js';
import { CONTROL_EXCHANGE, CONTROL_HEADER } from '../protocol/names.js';
import {
  DESCRIBE_ALL_KEY,
  DESCRIBE_CONTROL,
  MAX_INSTANCES,
  readDescribeReply,
  type InstanceDescription,
  type MethodDescription,
} from '../protocol/describe.js';

/** Options of `rpc.services()` and `rpc.describe()`. */
export interface DiscoveryOptions {
  /**
   * How long to collect answers, in milliseconds: every instance that answers within it is
   * in the result. @default 1000
   */
  timeoutMs?: number;
  /** Stops collecting early: the call rejects with CANCELLED. */
  signal?: AbortSignal;
  /**
   * Stop once this many instances have answered (`max: 1` with `describe(queue)` when one
   * answer is enough). @default no limit: every answer until `timeoutMs`
   */
  max?: number;
}

/**
 * Most bytes of method lists one discovery keeps. Instances that describe the same service
 * and methods share one copy, so a fleet of any size costs its distinct contracts plus
 * {@link INSTANCE_BYTES} each; answers past the budget are dropped. Without it, 10,000
 * answers of up to 1 MiB each (any peer bound to the control exchange can send them) could
 * make a caller hold 10 GB.
 */
export const MAX_DISCOVERY_BYTES = 16 * 1024 * 1024;
/** What one instance's own fields (queue, instance, counters, ...) count against the budget. */
const INSTANCE_BYTES = 1024;

/** Default of {@link DiscoveryOptions.timeoutMs}. */
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 1_000;

const OPTION_NAMES = optionNames({
  timeoutMs: true,
  signal: true,
  max: true,
} satisfies Record<keyof DiscoveryOptions, true>);

/** One service queue and the instances that serve it, as `rpc.services()` finds them. */
export interface ServiceDescription {
  readonly queue: string;
  /** The contract's name; absent when the queue is served by plain handlers. */
  readonly service?: string;
  /**
   * The methods, as the most recently started instance describes them (during a rolling
   * deploy instances may differ: see `consistent`).
   */
  readonly methods: readonly MethodDescription[];
  /** False when the instances do not all describe the same service and methods. */
  readonly consistent: boolean;
  /** Every instance that answered, oldest first. */
  readonly instances: readonly InstanceDescription[];
}

/** What discovery needs of the connection. */
export interface DiscoveryPorts {
  readonly caller: Caller;
  readonly control: ControlPlane;
}

/**
 * Asks every rabbit-rpc server on the vhost (`queue` undefined) or every instance of one
 * queue to describe itself, in one request through the control exchange, and groups the
 * answers by queue. Replies that are not valid descriptions are dropped.
 */
export async function discover(
  ports: DiscoveryPorts,
  queue: string | undefined,
  options: DiscoveryOptions | undefined,
): Promise<ServiceDescription[]> {
  checkOptions(options);
  const timeoutMs = resolveTimeoutMs(options?.timeoutMs, DEFAULT_DISCOVERY_TIMEOUT_MS);
  const max = Math.min(resolveMax(options?.max), MAX_INSTANCES);
  if (queue !== undefined) checkQueueName(queue);
  if (options?.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new RpcError('INVALID_ARGUMENT', 'signal must be an AbortSignal');
  }
  // No control exchange: no rabbit-rpc server has ever run on this vhost.
  const exists = await ports.control.exchangeExists().catch((error: unknown) => {
    throw RpcError.from(error, 'UNAVAILABLE');
  });
  if (!exists) return [];
  const instances: InstanceDescription[] = [];
  const multi = describeReplies(instances, max);
  await ports.caller.call(
    queue ?? DESCRIBE_ALL_KEY,
    null,
    options?.signal ? { timeoutMs, signal: options.signal } : { timeoutMs },
    undefined,
    multi,
  );
  return groupByQueue(instances);
}

/**
 * Collects describe replies: each checked, at most `max`, until the deadline, within
 * {@link MAX_DISCOVERY_BYTES}.
 */
export function describeReplies(instances: InstanceDescription[], max: number): MultiReply {
  const seen = new Set<string>();
  /** Method lists kept, by a digest of the service name and methods. */
  const shared = new Map<string, readonly MethodDescription[]>();
  let kept = 0;
  return {
    exchange: CONTROL_EXCHANGE,
    headers: { [CONTROL_HEADER]: DESCRIBE_CONTROL },
    onMessage(message) {
      const description = readDescribeReply(message.body);
      if (description === undefined) return MORE;
      // One answer per server (queue and instance): a repeated one is not a second instance.
      const key = `${description.queue}\u0000${description.instance}`;
      if (seen.has(key)) return MORE;
      const text = JSON.stringify([description.service ?? null, description.methods]);
      const digest = createHash('sha256').update(text).digest('base64');
      const methods = shared.get(digest);
      const cost = INSTANCE_BYTES + (methods ? 0 : text.length);
      if (kept + cost > MAX_DISCOVERY_BYTES) return MORE;
      kept += cost;
      seen.add(key);
      if (methods) instances.push({ ...description, methods });
      else {
        shared.set(digest, description.methods);
        instances.push(description);
      }
      return instances.length >= max ? instances : MORE;
    },
    onDeadline: () => instances,
    onNoRoute: () => instances,
  };
}

/** The answers grouped by queue, queues in name order, instances oldest first. */
export function groupByQueue(instances: readonly InstanceDescription[]): ServiceDescription[] {
  const byQueue = new Map<string, InstanceDescription[]>();
  for (const instance of instances) {
    const group = byQueue.get(instance.queue);
    if (group) group.push(instance);
    else byQueue.set(instance.queue, [instance]);
  }
  return [...byQueue.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([queue, group]) => {
      group.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
      // Every group has at least the instance that created it.
      const newest = group.at(-1) as InstanceDescription;
      const signature = (instance: InstanceDescription): string =>
        JSON.stringify([instance.service ?? null, instance.methods]);
      // Instances that describe the same methods share one list (describeReplies): compared
      // by identity, so a large fleet is not written out as text once per instance.
      let newestSignature: string | undefined;
      const consistent = group.every(
        (instance) =>
          (instance.methods === newest.methods && instance.service === newest.service) ||
          signature(instance) === (newestSignature ??= signature(newest)),
      );
      const service: ServiceDescription = {
        queue,
        methods: newest.methods,
        consistent,
        instances: group,
      };
      return newest.service === undefined ? service : { ...service, service: newest.service };
    });
}

function checkOptions(options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new RpcError('INVALID_ARGUMENT', 'options must be an object');
  }
  checkOptionNames(options, OPTION_NAMES, 'services() / describe()');
}
