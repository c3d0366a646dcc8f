import { randomBytes } from 'node:crypto';
import { CLUSTER_OPTION_NAMES, type PrivateClusterOptions } from './broker-options.js';
import { Shared } from './broker-shared.js';
import { PrivateBroker } from './private-broker.js';
import { freePort } from './ports.js';
import { checkOptionNames } from '../option-names.js';

/** Several private nodes clustered together; see {@link startPrivateCluster}. */
export class PrivateCluster implements AsyncDisposable {
  readonly #shared: Shared;

  /** @internal Use {@link startPrivateCluster}. */
  constructor(
    readonly nodes: readonly PrivateBroker[],
    shared: Shared,
  ) {
    this.#shared = shared;
  }

  /** One AMQP URL per node, in node order. */
  get urls(): string[] {
    return this.nodes.map((node) => node.url);
  }

  /** Stops every node (in parallel), kills the private epmd, removes the folder. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.close()));
    await this.#shared.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Starts `size` private nodes that form one cluster at boot (classic_config peer
 * discovery), and resolves once all are online (about 15-25 s for 3 nodes).
 */
export async function startPrivateCluster(
  size = 3,
  options: PrivateClusterOptions = {},
): Promise<PrivateCluster> {
  checkOptionNames(options, CLUSTER_OPTION_NAMES, 'startPrivateCluster()');
  if (!Number.isInteger(size) || size < 1)
    throw new TypeError('cluster size must be a positive integer');
  const shared = await Shared.create(options);
  const nodes: PrivateBroker[] = [];
  try {
    const prefix = `rpcc${randomBytes(2).toString('hex')}n`;
    for (let i = 1; i <= size; i++) {
      nodes.push(
        new PrivateBroker(shared, false, `${prefix}${i}`, await freePort(), await freePort()),
      );
    }
    const discovery = [
      'cluster_formation.peer_discovery_backend = classic_config',
      ...nodes.map(
        (node, i) => `cluster_formation.classic_config.nodes.${i + 1} = ${node.nodeName}`,
      ),
      options.config ?? '',
    ].join('\n');
    for (const node of nodes) await node.prepare(discovery);
    const [first, ...rest] = nodes;
    if (first) await first.start();
    await Promise.all(rest.map((node) => node.start()));
    if (first) await first.ctl('await_online_nodes', String(size), '--timeout', '120');
    return new PrivateCluster(nodes, shared);
  } catch (error) {
    await Promise.all(nodes.map((node) => node.close()));
    await shared.close();
    throw error;
  }
}
