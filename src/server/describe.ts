import type { ContractDescription, InstanceDescription } from '../protocol/describe.js';
import { DESCRIBE_VERSION, LIBRARY, PROTOCOL_VERSION } from '../protocol/describe.js';

/** What a server knows about itself when asked to describe itself. */
export interface DescribeSnapshot {
  readonly queue: string;
  /** The contract it serves; undefined for a plain `serve(queue, handler)`. */
  readonly contract: ContractDescription | undefined;
  /** Its connection's control queue: where the describe request reached it. */
  readonly instance: string;
  readonly startedAt: number;
  readonly inFlight: number;
  readonly prefetch: number;
  readonly replied: number;
  readonly expired: number;
  readonly errors: ErrorCounts;
}

/**
 * Error replies by code, for the describe answer. A handful of codes at most (the closed
 * set of RpcError codes), so a plain object is enough.
 */
export class ErrorCounts {
  readonly #counts: Record<string, number> = {};

  count(code: string): void {
    this.#counts[code] = (this.#counts[code] ?? 0) + 1;
  }

  snapshot(): Record<string, number> {
    return { ...this.#counts };
  }
}

/** The body of the describe reply (docs/protocol.md, "Describe and discovery"). */
export function describeInstance(snapshot: DescribeSnapshot): InstanceDescription {
  const description: InstanceDescription = {
    describe: DESCRIBE_VERSION,
    queue: snapshot.queue,
    methods: snapshot.contract?.methods ?? [],
    library: LIBRARY,
    protocol: PROTOCOL_VERSION,
    instance: snapshot.instance,
    startedAt: new Date(snapshot.startedAt).toISOString(),
    inFlight: snapshot.inFlight,
    prefetch: snapshot.prefetch,
    counters: {
      calls: snapshot.replied,
      errors: snapshot.errors.snapshot(),
      expired: snapshot.expired,
    },
  };
  return snapshot.contract ? { ...description, service: snapshot.contract.service } : description;
}
