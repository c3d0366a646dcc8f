import { connectError } from '../transport/errors.js';
import { RpcError } from '../errors.js';
import { redactUrl } from '../options/url.js';
import type {
  AmqpClientLike,
  AmqpField,
  AmqpProperties,
  AmqpTransport,
} from '../transport/types.js';
import { MemoryClient } from './memory-client.js';
import { BrokerCore } from './memory-core.js';

/** What {@link MemoryBroker.queue} tells about a queue. */
export interface MemoryQueueInfo {
  readonly name: string;
  /** Messages ready for delivery (expired ones at the head are dropped first, as RabbitMQ does). */
  readonly messageCount: number;
  readonly consumerCount: number;
  /** Messages delivered to consumers and not acked yet. */
  readonly unackedCount: number;
  readonly durable: boolean;
  readonly exclusive: boolean;
  readonly autoDelete: boolean;
  readonly arguments: Readonly<Record<string, AmqpField>>;
}

/**
 * An AMQP broker in memory, for unit tests of handlers and clients without RabbitMQ.
 * `broker.transport` goes into {@link ConnectOptions.transport}; everything above the
 * AMQP connection (encoding, validation, error replies, deadlines, contracts,
 * interceptors, reconnects) is the real code.
 *
 * It behaves like RabbitMQ 3.10 for what rabbit-rpc uses: the default exchange, queue
 * declare/delete with their channel errors (404, 405, 406), exclusive, auto-delete and
 * expiring queues, message TTL, dead-lettering through the default exchange, Direct
 * Reply-to, prefetch, acks, requeues (`redelivered`), basic.return of mandatory messages,
 * and `connection.blocked`. The test hooks simulate connection loss, resource alarms,
 * refused logins and deleted queues. docs/testing.md lists what it does not do.
 *
 * @example
 * ```ts
 * const broker = new MemoryBroker();
 * const rpc = await connect({ url: 'amqp://memory', transport: broker.transport });
 * await rpc.serve('echo', (request) => request);
 * await rpc.call('echo', 'hi'); // 'hi'
 * broker.disconnectAll(); // rpc reconnects by itself
 * ```
 */
export class MemoryBroker implements AsyncDisposable {
  readonly #core = new BrokerCore<MemoryClient>();
  #blocked: string | undefined;
  #refusal: Error | undefined;
  #closed = false;

  /**
   * Opens an in-memory connection; give it to `connect({ transport })`. The URL's user name
   * (default `guest`) is the connection's user; the rest of the URL is ignored (one vhost).
   */
  readonly transport: AmqpTransport = (url) => this.#connect(url);

  async #connect(url: string): Promise<AmqpClientLike> {
    // Connecting takes a round trip on a real broker: never resolve synchronously.
    await new Promise((resolve) => setImmediate(resolve));
    if (this.#closed) {
      throw new RpcError('UNAVAILABLE', `no AMQP broker answered at ${redactUrl(url)}: closed`);
    }
    if (this.#refusal) throw connectError(this.#refusal, url);
    const client = new MemoryClient(this.#core, userOf(url));
    this.#core.clients.add(client);
    const blocked = this.#blocked;
    // RabbitMQ tells a new connection about an alarm after it opens, not during.
    if (blocked !== undefined) setImmediate(() => client.setBlocked(blocked));
    return client;
  }

  /** A raw AMQP client of this broker, for tests that publish, consume or declare by hand. */
  connectClient(url = 'amqp://guest@memory'): Promise<AmqpClientLike> {
    return this.#connect(url);
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.#core.clients.size;
  }

  /** Names of the queues that exist now. */
  queueNames(): string[] {
    return [...this.#core.queues.keys()];
  }

  /** The queue's counters and properties, or undefined when it does not exist. */
  queue(name: string): MemoryQueueInfo | undefined {
    const queue = this.#core.queues.get(name);
    if (!queue) return undefined;
    this.#core.purgeExpired(queue);
    let unackedCount = 0;
    for (const client of this.#core.clients) {
      for (const channel of client.channels) {
        for (const entry of channel.unacked.values()) if (entry.queue === queue) unackedCount++;
      }
    }
    return {
      name,
      messageCount: queue.messages.length,
      consumerCount: queue.consumers.length,
      unackedCount,
      durable: queue.durable,
      exclusive: queue.owner !== undefined,
      autoDelete: queue.autoDelete,
      arguments: { ...queue.args },
    };
  }

  /**
   * Publishes through the default exchange as an outside publisher would (a foreign client,
   * a garbled request). Returns false when no queue `routingKey` exists (the message is dropped).
   */
  publish(routingKey: string, body: Uint8Array | string, properties: AmqpProperties = {}): boolean {
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : new Uint8Array(body);
    const routed = this.#core.queues.has(routingKey);
    this.#core.publish(undefined, '', routingKey, bytes, structuredClone(properties), false);
    return routed;
  }

  /**
   * Deletes a queue as `rabbitmqctl delete_queue` would: its messages go, and its consumers
   * are cancelled by the broker (their `wait()` rejects). Returns the messages it held.
   */
  deleteQueue(name: string): number {
    return this.#core.deleteQueue(name);
  }

  /**
   * Simulates losing every connection (like `rabbitmqctl close_all_connections`): channels
   * close, unacked deliveries go back to their queues (`redelivered`), exclusive queues are
   * deleted, and each client's `ondisconnect` fires with an error.
   */
  disconnectAll(reason = 'closed by MemoryBroker.disconnectAll()'): void {
    const error = new Error(`connection closed: CONNECTION_FORCED - ${reason} (320)`);
    for (const client of [...this.#core.clients]) client.lose(error);
  }

  /** Simulates a resource alarm: clients get `connection.blocked`, and their publishes reject. */
  block(reason = 'low on memory'): void {
    this.#blocked = reason;
    for (const client of this.#core.clients) client.setBlocked(reason);
  }

  /** Clears the alarm: clients get `connection.unblocked`. */
  unblock(): void {
    this.#blocked = undefined;
    for (const client of this.#core.clients) client.setUnblocked();
  }

  /**
   * New connections fail until {@link acceptConnections}: with UNAVAILABLE by default (as
   * when nothing listens), or as `error` says: a message ending in "(403)" is a refused
   * login (UNAUTHENTICATED), "(530)" a refused vhost (PERMISSION_DENIED), like the real
   * transport maps them.
   */
  refuseConnections(error: Error = new Error('connect ECONNREFUSED (refused by MemoryBroker)')) {
    this.#refusal = error;
  }

  acceptConnections(): void {
    this.#refusal = undefined;
  }

  /**
   * Shuts the broker down: every connection is closed by the broker (320, their
   * `ondisconnect` fires), queues and their timers go, and new connections fail. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.disconnectAll("broker forced connection closure with reason 'shutdown'");
    this.#core.clear();
    return Promise.resolve();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function userOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username) || 'guest';
  } catch {
    return 'guest';
  }
}
