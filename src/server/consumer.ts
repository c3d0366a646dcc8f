import type { AmqpChannelLike, AmqpClientLike, AmqpConsumerLike } from '../transport/types.js';
import { AckBatcher } from '../transport/ack-batch.js';
import { brokerSizeLimit, fromAmqpError } from '../transport/errors.js';
import type { Link } from '../transport/link.js';
import { RpcError } from '../errors.js';
import { settledWithin } from '../within.js';
import { declareServiceQueue } from './declare.js';
import type { Deliveries } from './deliveries.js';
import type { ServerParts } from './parts.js';

/** What the consumer tells the server it consumes for. */
export interface ConsumerHost {
  /** The server is closing (or has stopped): no recovery. */
  readonly closing: boolean;
  /** The channel is lost: abort the running handlers (their requests return to the queue). */
  lost(reason: RpcError): void;
  /** The queue cannot be consumed any more: the server stops for good. */
  fail(error: RpcError): void;
  /** Something was settled or went away: closing may be able to go on. */
  settled(): void;
}

/** How long close() waits for each broker answer (cancel-ok, close-ok) before going on. */
export const CLOSE_STEP_TIMEOUT_MS = 2_000;

/**
 * Consumes the served queue on a channel of its own: declares the queue, sets the prefetch
 * and consumes; after a reconnect, or when the broker cancels the consumer or closes the
 * channel, opens a new channel, declares the queue again and goes on consuming.
 */
export class QueueConsumer {
  #channel: AmqpChannelLike | undefined;
  /** Settles the deliveries of #channel. */
  #acks: AckBatcher | undefined;
  #consumer: AmqpConsumerLike | undefined;
  /** Consuming again after a loss: close() waits for it, or the new consumer would outlive it. */
  #recovering: Promise<void> | undefined;
  /** Set once close() has taken the channel to close it: a late recovery closes its own. */
  #stopped = false;

  constructor(
    private readonly link: Link,
    private readonly parts: ServerParts,
    private readonly deliveries: Deliveries,
    private readonly host: ConsumerHost,
  ) {}

  /** No delivery left to settle (a void channel settles nothing). */
  get settled(): boolean {
    const acks = this.#acks;
    return acks === undefined || acks.channel.closed || acks.unsettled === 0;
  }

  async consume(client: AmqpClientLike): Promise<void> {
    const { queue, options, logger, counters } = this.parts;
    let channel: AmqpChannelLike | undefined;
    try {
      channel = options.declare
        ? await declareServiceQueue(client, queue, options, logger)
        : await client.channel();
      await channel.basicQos(options.prefetch);
      // The AMQP client has rejected such a request already (without requeue): count it.
      channel.onUndecodable = (message) => {
        counters.undecodable++;
        logger.warn(
          { queue, err: message.decodeError },
          'rejected a request whose AMQP properties do not decode',
        );
      };
      const acks = new AckBatcher(channel, () => this.host.settled());
      this.#channel = channel;
      this.#acks = acks;
      const deliveries = this.deliveries;
      this.#consumer = await channel.basicConsume(queue, { noAck: false }, (message) => {
        deliveries.onDelivery(acks, message);
      });
      if (this.#stopped) {
        // close() gave up waiting for this recovery and has finished: stop at once.
        acks.flush();
        channel.close().catch(() => undefined);
        return;
      }
    } catch (error) {
      this.#channel = undefined;
      this.#acks = undefined;
      channel?.close().catch(() => undefined);
      throw fromAmqpError(error, `serving "${queue}" failed`);
    }
    const consumedOn = channel;
    this.#consumer.wait().then(
      () => undefined,
      (error: unknown) => {
        this.#stoppedBy(consumedOn, fromAmqpError(error, `the consumer of "${queue}" stopped`));
      },
    );
  }

  /** The broker cancelled the consumer (queue deleted) or closed the channel (a channel error). */
  #stoppedBy(channel: AmqpChannelLike, error: RpcError): void {
    // While closing: the deliveries of a closed channel are void, nothing to wait for.
    this.host.settled();
    if (this.#channel !== channel || this.host.closing) return;
    this.#channel = undefined;
    this.#acks = undefined;
    // A reply over the broker's max_message_size closed the channel and its request comes
    // back: from now on such a reply becomes RESOURCE_EXHAUSTED instead of looping.
    const executor = this.parts.executor;
    executor.maxPayloadBytes = Math.min(
      executor.maxPayloadBytes,
      brokerSizeLimit(error) ?? Infinity,
    );
    this.host.lost(new RpcError('UNAVAILABLE', error.message, { cause: error }));
    channel.close().catch(() => undefined);
    const client = this.link.client;
    // A lost connection is handled by connectionLost/connectionRestored instead.
    if (client && !client.closed) this.recover(client);
  }

  recover(client: AmqpClientLike): void {
    const recovering = this.consume(client).then(
      () => {
        this.parts.counters.recoveries++;
        this.parts.logger.info({ queue: this.parts.queue }, 'consuming again');
      },
      (error: unknown) => {
        const failure = RpcError.from(error, 'UNAVAILABLE');
        // The connection went meanwhile (a network failure, or another server's declaration
        // the broker answered with a connection error): connectionRestored tries again on
        // the next one. Only a refusal of this server's own declaration stops it.
        if (client.closed && !isRefusal(failure)) return;
        this.host.fail(failure);
      },
    );
    this.#recovering = recovering;
    const done = (): void => {
      if (this.#recovering === recovering) this.#recovering = undefined;
    };
    recovering.then(done, done);
  }

  /** The connection is gone: its channel and deliveries with it. */
  forget(): void {
    this.#channel = undefined;
    this.#acks = undefined;
    this.#consumer = undefined;
  }

  /** Stops taking deliveries: lets a recovery under way finish, then cancels the consumer. */
  async cancel(): Promise<void> {
    // A recovery under way would start a consumer after the cancel below: let it finish.
    if (this.#recovering) await settledWithin(this.#recovering, CLOSE_STEP_TIMEOUT_MS);
    if (this.#consumer) await settledWithin(this.#consumer.cancel(), CLOSE_STEP_TIMEOUT_MS);
  }

  /** Acks what was answered, then closes the channel; a late recovery closes its own. */
  async close(): Promise<void> {
    this.#stopped = true;
    const channel = this.#channel;
    const acks = this.#acks;
    this.#channel = undefined;
    this.#acks = undefined;
    if (channel && !channel.closed) {
      // The last acks were gathered for the end of this tick; closing first would drop them
      // and the broker would requeue requests already answered. Ack, then close: the
      // broker handles a channel's frames in order, so close-ok means the acks are in.
      acks?.flush();
      await settledWithin(channel.close(), CLOSE_STEP_TIMEOUT_MS);
    }
  }
}

/** A broker refusal that repeats on every attempt (see declare.ts). */
function isRefusal(error: RpcError): boolean {
  return error.code === 'FAILED_PRECONDITION' || error.code === 'PERMISSION_DENIED';
}
