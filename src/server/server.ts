import type { AmqpClientLike, AmqpMessageLike, AmqpProperties } from '../transport/types.js';
import type { Link, LinkParticipant } from '../transport/link.js';
import type { ResolvedServeOptions } from '../options/serve.js';
import type { ControlPlane, ControlTarget } from '../control/control-plane.js';
import type { ControlSender } from '../protocol/control.js';
import { CONTENT_TYPE_JSON, CONTROL_QUEUE_HEADER } from '../protocol/names.js';
import type { ContractDescription } from '../protocol/describe.js';
import { RpcError } from '../errors.js';
import type { Handler } from '../handler.js';
import { Broadcasts } from './broadcast.js';
import { QueueConsumer, type ConsumerHost } from './consumer.js';
import { answerBytes, DedupeCache } from './dedupe.js';
import { Deliveries } from './deliveries.js';
import { batchAdvertisement, DescribeBudget, describeInstance, ErrorCounts } from './describe.js';
import { Executor } from './execute.js';
import type { ServerParts } from './parts.js';
import { Responder } from './respond.js';
import { Running } from './running.js';
import { Counters, type ServerStats } from './stats.js';
import { StreamSender } from './stream-sender.js';

export type { Handler, HandlerContext } from '../handler.js';
export type { ServerStats } from './stats.js';

/** What {@link createServer} builds a server from (connection.ts `serve`). */
export interface ServerSetup {
  readonly link: Link;
  readonly queue: string;
  /** The handler, wrapped in its serve interceptors. */
  readonly handler: Handler;
  readonly options: ResolvedServeOptions;
  readonly maxPayloadBytes: number;
  /** Called once the server has stopped (closed or failed). */
  readonly onClosed: (server: RpcServer) => void;
  readonly control: ControlPlane | undefined;
  /** The contract served, for describe requests; undefined for a plain handler. */
  readonly contract: ContractDescription | undefined;
}

/** Set by RpcServer's static block: the only way to construct one (its constructor is private). */
let construct: ((core: ServerCore) => RpcServer) | undefined;

/**
 * Consumes one queue: runs the handler for each request (up to `prefetch` at once),
 * publishes the reply to `reply_to` with the request's correlation id, then acks.
 * After a reconnect, or when the broker cancels its consumer or closes its channel, it
 * opens a new channel, declares the queue again and goes on consuming.
 */
export class RpcServer implements AsyncDisposable {
  readonly queue: string;
  readonly #core: ServerCore;

  static {
    construct = (core) => new RpcServer(core);
  }

  /** Use {@link RpcConnection.serve}. */
  private constructor(core: ServerCore) {
    this.queue = core.parts.queue;
    this.#core = core;
  }

  get stats(): ServerStats {
    return this.#core.stats();
  }

  /**
   * Resolves when the server has stopped for good: `undefined` after `close()`, or the
   * RpcError that made it stop (its queue could not be declared or consumed again).
   */
  get closed(): Promise<RpcError | undefined> {
    return this.#core.closed;
  }

  /**
   * Stops taking requests, waits for running handlers (at most `drainTimeoutMs`, then their
   * `ctx.signal` aborts and unfinished requests go back to the broker), and resolves once
   * every request it answered is acked and its channel is closed. Idempotent.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * A server, not consuming yet: `start()` registers it with the control plane, declares the
 * queue, sets the prefetch and starts consuming (rejects if it cannot).
 */
export function createServer(setup: ServerSetup): {
  readonly server: RpcServer;
  readonly start: () => Promise<void>;
} {
  const core = new ServerCore(setup);
  const server = (construct as (core: ServerCore) => RpcServer)(core);
  core.server = server;
  return { server, start: () => core.start() };
}

/** How often a server looks for handlers running past their deadline (Running.sweep). */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * A server's lifecycle and its roles towards the link (reconnects) and the control plane
 * (cancels, credit, broadcasts, describe requests): private, behind {@link RpcServer}.
 */
class ServerCore implements LinkParticipant, ControlTarget, ConsumerHost {
  readonly parts: ServerParts;
  server: RpcServer | undefined;
  readonly #setup: ServerSetup;
  readonly #deliveries: Deliveries;
  readonly #consumer: QueueConsumer;
  readonly #broadcasts: Broadcasts | undefined;
  readonly #describeBudget = new DescribeBudget();
  /** Looks for handlers running past their deadline; see Running.sweep. */
  #sweepTimer: NodeJS.Timeout | undefined;
  /** For the describe answer: when consuming began. */
  #startedAt = Date.now();
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  readonly closed: Promise<RpcError | undefined>;
  #resolveClosed!: (error: RpcError | undefined) => void;

  constructor(setup: ServerSetup) {
    this.#setup = setup;
    const { link, queue, options, control } = setup;
    const counters = new Counters();
    const executor = new Executor(
      queue,
      setup.handler,
      options.exposeErrorStack,
      options.requireUserId,
      setup.maxPayloadBytes,
      link.logger,
      new ErrorCounts(),
    );
    const responder = new Responder(link.flow, counters, options.deadLetter);
    this.parts = {
      queue,
      options,
      logger: link.logger,
      counters,
      running: new Running(options.prefetch, counters, () => this.#checkDrained()),
      executor,
      responder,
      streams: new StreamSender(executor, responder, () => control?.address),
      dedupe: options.dedupe ? new DedupeCache(options.dedupe, answerBytes) : undefined,
    };
    this.#deliveries = new Deliveries(this.parts);
    this.#consumer = new QueueConsumer(link, this.parts, this.#deliveries, this);
    this.#broadcasts = control ? new Broadcasts(this.parts, control) : undefined;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  stats(): ServerStats {
    const counters = this.parts.counters;
    return {
      active: this.parts.running.size,
      replied: counters.replied,
      expired: counters.expired,
      recoveries: counters.recoveries,
      cancelled: counters.cancelled,
      deduplicated: counters.deduplicated,
      undecodable: counters.undecodable,
      abandoned: counters.abandoned,
    };
  }

  async start(): Promise<void> {
    const { control, link, queue } = this.#setup;
    // The control queue first: ready for cancels before the first request, and set up
    // before any reply is published (a broker resource alarm would then block the
    // connection, and with it the control plane's channel operations).
    await control?.register(queue, this);
    try {
      await this.#consumer.consume(await link.ready());
    } catch (error) {
      control?.unregister(queue, this);
      throw error;
    }
    link.join(this);
    this.#sweepTimer = setInterval(
      () => this.parts.running.sweep(queue, link.logger),
      SWEEP_INTERVAL_MS,
    );
    this.#sweepTimer.unref();
    this.#startedAt = Date.now();
  }

  get closing(): boolean {
    return this.#closing !== undefined;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#consumer.cancel();
    if (!this.#isDrained()) {
      const drained = new Promise<void>((resolve) => (this.#drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>(
        (resolve) => (timer = setTimeout(resolve, this.#setup.options.drainTimeoutMs)),
      );
      await Promise.race([drained, timedOut]);
      clearTimeout(timer);
      this.parts.running.abortAll(new RpcError('CANCELLED', 'the server is closing'));
    }
    // Only now: while draining, cancels and stream credit must still reach the handlers.
    this.#setup.control?.unregister(this.parts.queue, this);
    this.#setup.link.leave(this);
    clearInterval(this.#sweepTimer);
    await this.#consumer.close();
    this.#ended(undefined);
  }

  /** Stops for good: the queue cannot be consumed any more. */
  fail(error: RpcError): void {
    if (this.#closing) return;
    this.#setup.link.logger.error(
      { queue: this.parts.queue, code: error.code },
      `server stopped: ${error.message}`,
    );
    this.#closing = Promise.resolve();
    clearInterval(this.#sweepTimer);
    this.#setup.link.leave(this);
    this.#setup.control?.unregister(this.parts.queue, this);
    this.parts.running.abortAll(error);
    this.#ended(error);
  }

  #ended(error: RpcError | undefined): void {
    this.#setup.onClosed(this.server as RpcServer);
    this.#resolveClosed(error);
  }

  /**
   * Nothing left to wait for before closing: no handler runs, and every delivery is settled
   * (a batch is acked only after its last call and its reply; a void channel settles nothing).
   */
  #isDrained(): boolean {
    return this.parts.running.size === 0 && this.#consumer.settled;
  }

  #checkDrained(): void {
    if (this.#drained && this.#isDrained()) this.#drained();
  }

  // The consumer's host.

  lost(reason: RpcError): void {
    this.parts.running.abortAll(reason);
  }

  settled(): void {
    this.#checkDrained();
  }

  // The link's participant.

  /** The connection is gone: abort handlers; their requests return to the queue. */
  connectionLost(error: RpcError): void {
    this.#consumer.forget();
    this.parts.running.abortAll(new RpcError('UNAVAILABLE', error.message, { cause: error }));
    this.#checkDrained();
  }

  /** A new connection: consume again. */
  connectionRestored(client: AmqpClientLike): void {
    if (!this.#closing) this.#consumer.recover(client);
  }

  /** No reconnect is coming: the server stops for good. */
  connectionEnded(error: RpcError): void {
    this.fail(error);
  }

  // The control plane's target.

  cancel(correlationId: string, from: ControlSender): void {
    this.parts.running.cancel(correlationId, from);
  }

  credit(correlationId: string, total: number, from: ControlSender): void {
    this.parts.streams.credit(correlationId, total, from);
  }

  broadcast(message: AmqpMessageLike): void {
    if (!this.#closing) this.#broadcasts?.handle(message);
  }

  /**
   * A describe request (docs/protocol.md, "Describe and discovery"): answered on the control
   * channel with what this server is and how it is doing; never runs the handler. Bounded
   * (DescribeBudget): the excess is dropped, counted and logged once a second.
   */
  describe(message: AmqpMessageLike): void {
    const { replyTo, correlationId } = message.properties;
    const control = this.#setup.control;
    const instance = control?.address;
    if (this.#closing || !replyTo || !control || instance === undefined) return;
    const budget = this.#describeBudget.take();
    if (!budget.ok) {
      this.parts.counters.describeDropped++;
      if (budget.first) {
        this.parts.logger.warn(
          { queue: this.parts.queue, dropped: this.parts.counters.describeDropped },
          'dropping describe requests over the bound of this server (docs/security.md)',
        );
      }
      return;
    }
    const { counters, running, executor, options, queue } = this.parts;
    const body = describeInstance({
      queue,
      contract: this.#setup.contract,
      instance,
      startedAt: this.#startedAt,
      inFlight: running.size,
      prefetch: options.prefetch,
      replied: counters.replied,
      expired: counters.expired,
      errors: executor.errors,
      batch: batchAdvertisement(options.batch, this.#setup.maxPayloadBytes),
    });
    const properties: AmqpProperties = {
      contentType: CONTENT_TYPE_JSON,
      headers: { [CONTROL_QUEUE_HEADER]: instance },
    };
    if (correlationId !== undefined) properties.correlationId = correlationId;
    control.reply(replyTo, new TextEncoder().encode(JSON.stringify(body)), properties);
  }
}
