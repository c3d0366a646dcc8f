import type { AmqpChannelLike, AmqpMessageLike, AmqpProperties } from '../transport/types.js';
import { fromAmqpError } from '../transport/errors.js';
import type { Link, LinkParticipant } from '../transport/link.js';
import { CONTROL_EXCHANGE } from '../protocol/names.js';
import { DESCRIBE_ALL_KEY } from '../protocol/describe.js';
import { controlProperties, readControlMessage, type ControlSender } from '../protocol/control.js';
import { LazyChannel } from '../transport/lazy-channel.js';
import { batchWritesThisTick } from '../transport/amqp-client.js';
import { settledWithin } from '../within.js';

export type { ControlSender } from '../protocol/control.js';

/** What a server does with the control messages for its queue. */
export interface ControlTarget {
  /** The caller of `correlationId` gave up: abort its handler. */
  cancel(correlationId: string, from: ControlSender): void;
  /** The caller of stream `correlationId` accepts `total` items in all. */
  credit(correlationId: string, total: number, from: ControlSender): void;
  /** A broadcast request (published to the control exchange) for the queue it serves. */
  broadcast(message: AmqpMessageLike): void;
  /** A describe request: answer with what the server is (docs/protocol.md). */
  describe(message: AmqpMessageLike): void;
}

/** How long a "the control exchange does not exist" answer is trusted before asking again. */
const MISSING_EXCHANGE_RECHECK_MS = 5_000;

/**
 * The control plane of one connection (docs/protocol.md, "Control messages"):
 *
 * - serving side: one exclusive control queue, bound to the `rabbit-rpc.control` direct
 *   exchange with the name of every queue served here, consumed without acks. Cancels,
 *   stream credit and broadcast requests arrive on it.
 * - calling side: publishes cancels and credit, best effort: a lost control message costs
 *   wasted work on the server, never a wrong reply.
 *
 * Its channel is separate from the callers' and servers' channels, so that a control
 * problem (a missing exchange, a permission) never fails a call.
 */
export class ControlPlane implements LinkParticipant {
  readonly #link: Link;
  readonly #targets = new Map<string, Set<ControlTarget>>();
  /** Consumes the control queue. */
  readonly #listenChannel: LazyChannel;
  /**
   * Publishes control messages and broadcast replies: a channel of its own, because a
   * refused publish (no write permission on the exchange) closes the channel it was on.
   */
  readonly #sendChannel: LazyChannel;
  /** The control queue's name while it is consumed. */
  #queue: string | undefined;
  #listening: Promise<string> | undefined;
  /** The control queue bound with the describe-all key, so that discovery reaches it. */
  #describeBound: string | undefined;
  #exchangeExists = false;
  /** The existence check under way: concurrent cancels (rpc.close() sends one per call) share it. */
  #checkingExchange: Promise<boolean> | undefined;
  /** Control messages on their way out: close() lets them go first. */
  readonly #sending = new Set<Promise<unknown>>();
  #exchangeMissingSince = -Infinity;

  /**
   * @param userId the `user_id` of the control messages this connection sends (the login,
   *   as on its requests): servers honour a cancel or credit only from the caller's user.
   */
  constructor(
    link: Link,
    private readonly userId: string | undefined,
  ) {
    this.#link = link;
    this.#listenChannel = new LazyChannel(link);
    this.#sendChannel = new LazyChannel(link);
    link.join(this);
  }

  /** This connection's control queue, once a server is registered; where credit and cancels for its streams go. */
  get address(): string | undefined {
    return this.#queue;
  }

  /**
   * Routes control messages for `queue` to `target`. Never throws: without the control
   * plane (no permission on the exchange) the server still serves, without cancellation
   * and broadcasts; the reason is logged.
   */
  async register(queue: string, target: ControlTarget): Promise<void> {
    let targets = this.#targets.get(queue);
    if (!targets) this.#targets.set(queue, (targets = new Set()));
    targets.add(target);
    try {
      const controlQueue = await this.#listen();
      await this.#bind(controlQueue, queue);
      if (this.#describeBound !== controlQueue) {
        await this.#bind(controlQueue, DESCRIBE_ALL_KEY);
        this.#describeBound = controlQueue;
      }
    } catch (error) {
      this.#link.logger.warn(
        { queue, err: error },
        'no control plane (see the permissions in docs/reliability.md): this server will not see cancellations or broadcasts',
      );
    }
  }

  /**
   * Binds on a throwaway channel: a refused bind (no write permission on the control queue,
   * no read permission on the exchange) then closes only that channel. On the control
   * channel it would stop the control queue's consumer, which listens again at once: a loop.
   */
  async #bind(controlQueue: string, queue: string): Promise<void> {
    try {
      await this.#onThrowawayChannel((channel) =>
        channel.queueBind(controlQueue, CONTROL_EXCHANGE, queue),
      );
    } catch (error) {
      throw fromAmqpError(error, 'binding the control queue failed');
    }
  }

  /** Runs `work` on a channel of its own, closed afterwards: its failure closes only that. */
  async #onThrowawayChannel<T>(work: (channel: AmqpChannelLike) => Promise<T>): Promise<T> {
    const client = await this.#link.ready();
    const channel = await client.channel();
    try {
      return await work(channel);
    } finally {
      if (!channel.closed) channel.close().catch(() => undefined);
    }
  }

  unregister(queue: string, target: ControlTarget): void {
    const targets = this.#targets.get(queue);
    targets?.delete(target);
    // The binding stays until the connection closes: a message routed by it finds no target.
    if (targets?.size === 0) this.#targets.delete(queue);
  }

  /**
   * Tells the server running call `correlationId` that its caller gave up: to the instance
   * that runs it when known (`controlQueue`), else to every instance serving `queue`. The
   * call's `replyTo` goes along, so that a server matches the call, not just an id that
   * another caller may use too.
   */
  cancel(
    queue: string,
    correlationId: string,
    controlQueue: string | undefined,
    replyTo: string,
  ): void {
    const properties = controlProperties(correlationId, this.userId, replyTo);
    if (controlQueue !== undefined) this.#send('', controlQueue, properties);
    else this.#sendViaExchange(queue, properties);
  }

  /** Grants a stream's server `total` items in all; `replyTo` names the call, as for cancel. */
  credit(controlQueue: string, correlationId: string, total: number, replyTo: string): void {
    this.#send('', controlQueue, controlProperties(correlationId, this.userId, replyTo, total));
  }

  /** Publishes a broadcast reply on the control channel. */
  reply(replyTo: string, body: Uint8Array, properties: AmqpProperties): void {
    this.#track(
      this.#sendChannel.open().then(
        (channel) => {
          batchWritesThisTick(channel.connection);
          return channel.basicPublish('', replyTo, body, properties).catch(() => undefined);
        },
        () => undefined,
      ),
    );
  }

  #track(sending: Promise<unknown>): void {
    this.#sending.add(sending);
    const done = (): void => void this.#sending.delete(sending);
    sending.then(done, done);
  }

  /**
   * True when the control exchange exists, that is when some rabbit-rpc server has ever
   * run on this vhost. Checked with a passive declare (no configure permission needed) on a
   * throwaway channel, since a failed check closes the channel.
   */
  exchangeExists(): Promise<boolean> {
    if (this.#exchangeExists) return Promise.resolve(true);
    if (Date.now() - this.#exchangeMissingSince < MISSING_EXCHANGE_RECHECK_MS) {
      return Promise.resolve(false);
    }
    this.#checkingExchange ??= this.#checkExchange().finally(() => {
      this.#checkingExchange = undefined;
    });
    return this.#checkingExchange;
  }

  async #checkExchange(): Promise<boolean> {
    // Only the declare's refusal means "missing"; no connection is the caller's error.
    const exists = await this.#onThrowawayChannel((channel) =>
      channel.exchangeDeclare(CONTROL_EXCHANGE, 'direct', { passive: true }).then(
        () => true,
        () => false,
      ),
    );
    if (exists) this.#exchangeExists = true;
    else this.#exchangeMissingSince = Date.now();
    return this.#exchangeExists;
  }

  #sendViaExchange(queue: string, properties: AmqpProperties): void {
    // Publishing to a missing exchange would close the channel: check it exists first.
    this.#track(
      this.exchangeExists().then(
        (exists) => {
          if (exists) this.#send(CONTROL_EXCHANGE, queue, properties);
        },
        () => undefined,
      ),
    );
  }

  #send(exchange: string, routingKey: string, properties: AmqpProperties): void {
    this.#track(
      this.#sendChannel.open().then(
        (channel) => {
          batchWritesThisTick(channel.connection);
          return channel
            .basicPublish(exchange, routingKey, EMPTY, properties)
            .catch(() => undefined);
        },
        (error: unknown) => {
          this.#link.logger.debug({ err: error }, 'a control message was not sent');
        },
      ),
    );
  }

  /** Declares the exchange and the control queue and consumes it, once per connection. */
  #listen(): Promise<string> {
    this.#listening ??= this.#declareAndConsume().catch((error: unknown) => {
      this.#listening = undefined;
      throw fromAmqpError(error, 'setting up the control queue failed');
    });
    return this.#listening;
  }

  async #declareAndConsume(): Promise<string> {
    const channel = await this.#listenChannel.open();
    await channel.exchangeDeclare(CONTROL_EXCHANGE, 'direct', { durable: true, autoDelete: false });
    this.#exchangeExists = true;
    const { name } = await channel.queueDeclare('', {
      exclusive: true,
      autoDelete: true,
      durable: false,
    });
    channel.onUndecodable = (message) => {
      this.#link.logger.debug(
        { err: message.decodeError },
        'dropped an undecodable control message',
      );
    };
    const consumer = await channel.basicConsume(
      name,
      { noAck: true, exclusive: true },
      (message) => {
        this.#dispatch(message);
      },
    );
    consumer.wait().then(
      () => undefined,
      () => this.#stopped(channel),
    );
    this.#queue = name;
    return name;
  }

  /** The broker closed the control channel: listen again on a new one, bindings and all. */
  #stopped(channel: AmqpChannelLike): void {
    if (this.#listenChannel.current !== channel) return;
    this.#forget();
    const client = this.#link.client;
    if (client && !client.closed && this.#targets.size > 0) this.connectionRestored();
  }

  #dispatch(message: AmqpMessageLike): void {
    const control = readControlMessage(message);
    if (control === undefined) return;
    if (control.kind === 'broadcast') {
      // The first server of this connection on that queue answers it.
      const [target] = this.#targets.get(message.routingKey) ?? [];
      target?.broadcast(message);
      return;
    }
    if (control.kind === 'describe') {
      // Every server of the connection (discovery), or those of the queue it was sent for.
      const targets =
        message.routingKey === DESCRIBE_ALL_KEY
          ? [...this.#targets.values()].flatMap((set) => [...set])
          : [...(this.#targets.get(message.routingKey) ?? [])];
      for (const target of targets) target.describe(message);
      return;
    }
    // Whichever server runs the call finds it (by its id, its user and its reply address).
    for (const targets of this.#targets.values()) {
      for (const target of targets) {
        if (control.kind === 'cancel') target.cancel(control.correlationId, control.from);
        else target.credit(control.correlationId, control.total, control.from);
      }
    }
  }

  #forget(): void {
    this.#listenChannel.forget();
    this.#sendChannel.forget();
    this.#queue = undefined;
    this.#listening = undefined;
    this.#describeBound = undefined;
  }

  connectionLost(): void {
    this.#forget();
  }

  connectionRestored(): void {
    if (this.#targets.size === 0) return;
    // A new control queue, bound again with every queue served here.
    const entries = [...this.#targets];
    this.#targets.clear();
    for (const [queue, targets] of entries) {
      for (const target of targets) void this.register(queue, target);
    }
  }

  connectionEnded(): void {
    this.#forget();
  }

  /**
   * Lets the control messages already on their way out go (a cancel sent just before
   * `close()` must reach its server), for at most a second, then forgets the channels.
   */
  async close(): Promise<void> {
    // Loops: a cancel via the exchange sends only once its existence check is done.
    for (let round = 0; round < 2 && this.#sending.size > 0 && this.#link.client; round++) {
      await settledWithin(Promise.all([...this.#sending]), CLOSE_SEND_TIMEOUT_MS);
    }
    this.#link.leave(this);
    this.#forget();
  }
}

const EMPTY = new Uint8Array(0);
/** How long close() waits for control messages on their way out. */
const CLOSE_SEND_TIMEOUT_MS = 500;
