import { forceClose, openAmqp } from './amqp-client.js';
import { connectError, isPermanent } from './errors.js';
import { RpcError } from '../errors.js';
import { FlowGate } from './flow.js';
import type { Logger } from '../logger.js';
import type { AmqpClientLike, AmqpTransport } from './types.js';
import { type ResolvedConnectOptions } from '../options/connect.js';
import { redactUrl } from '../options/url.js';
import { settledWithin } from '../within.js';

/**
 * `'connected'`; `'blocked'` (a broker resource alarm pauses publishers); `'reconnecting'`
 * (the connection was lost and is being re-established); `'closed'` (by `close()`, or for
 * good after a failure that retrying cannot fix).
 */
export type ConnectionState = 'connected' | 'blocked' | 'reconnecting' | 'closed';

/** What users of the link do when the AMQP connection goes and comes back. */
export interface LinkParticipant {
  /** The connection is gone; channels and deliveries on it are void. */
  connectionLost(error: RpcError): void;
  /** A new connection is up; re-open channels, re-declare, re-consume. */
  connectionRestored(client: AmqpClientLike): void;
  /** The link has ended for good with this error (not after `close()`): give up. */
  connectionEnded(error: RpcError): void;
}

/**
 * Owns the AMQP connection: opens it (trying each URL in turn), tracks its state and flow
 * control, and after an unexpected loss reconnects with exponential backoff and jitter.
 * Attempts never overlap, and a refused login or access ends the loop instead of
 * hammering the broker.
 */
export class Link {
  readonly flow = new FlowGate();
  readonly #options: ResolvedConnectOptions;
  readonly #participants = new Set<LinkParticipant>();
  readonly #stateListeners = new Set<(state: ConnectionState) => void>();
  #client: AmqpClientLike | undefined;
  #url: string;
  #state: ConnectionState = 'connected';
  #reconnects = 0;
  /** Settles when the link is usable again (or ends); one per outage. */
  #restored:
    | {
        promise: Promise<AmqpClientLike>;
        resolve: (client: AmqpClientLike) => void;
        reject: (error: RpcError) => void;
      }
    | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #endedWith: RpcError | undefined;
  readonly #ended: Promise<RpcError | undefined>;
  #resolveEnded!: (error: RpcError | undefined) => void;

  constructor(client: AmqpClientLike, url: string, options: ResolvedConnectOptions) {
    this.#options = options;
    this.#url = url;
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#adopt(client, url);
    if (client.blocked !== undefined) {
      this.flow.block();
      this.#state = 'blocked';
    }
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The connection's logger (silent unless the application gave one). */
  get logger(): Logger {
    return this.#options.logger;
  }

  /** The URL in use (password hidden). */
  get url(): string {
    return redactUrl(this.#url);
  }

  /** Times the link came back after a loss. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** The open client, or undefined while reconnecting or closed. */
  get client(): AmqpClientLike | undefined {
    return this.#client;
  }

  /** Resolves with `undefined` after `close()`, or with the error that ended the link for good. */
  get ended(): Promise<RpcError | undefined> {
    return this.#ended;
  }

  /** The open client now, or once the link is back; rejects once it has ended. */
  ready(): Promise<AmqpClientLike> {
    if (this.#client) return Promise.resolve(this.#client);
    if (this.#endedWith) return Promise.reject(this.#endedWith);
    if (this.#restored) return this.#restored.promise;
    return Promise.reject(new RpcError('FAILED_PRECONDITION', 'the connection is closed'));
  }

  /** Why the link cannot be used any more, if it cannot. */
  get endedWith(): RpcError | undefined {
    return this.#endedWith;
  }

  join(participant: LinkParticipant): void {
    this.#participants.add(participant);
  }

  leave(participant: LinkParticipant): void {
    this.#participants.delete(participant);
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of this.#stateListeners) {
      try {
        listener(state);
      } catch {
        // A listener's bug must not break the connection.
      }
    }
  }

  #adopt(client: AmqpClientLike, url: string): void {
    this.#client = client;
    this.#url = url;
    client.onblocked = () => {
      this.flow.block();
      if (this.#client === client) this.#setState('blocked');
    };
    client.onunblocked = () => {
      this.flow.unblock();
      if (this.#client === client) this.#setState('connected');
    };
    client.ondisconnect = (error) => {
      if (this.#client !== client) return;
      const detail = error ? `: ${error.message}` : '';
      this.#lost(
        new RpcError('UNAVAILABLE', `lost the connection to ${redactUrl(url)}${detail}`, {
          cause: error,
        }),
      );
    };
  }

  #lost(error: RpcError): void {
    this.logger.warn({ url: redactUrl(this.#url), code: error.code }, error.message);
    this.#client = undefined;
    this.flow.unblock();
    let resolve!: (client: AmqpClientLike) => void;
    let reject!: (error: RpcError) => void;
    const promise = new Promise<AmqpClientLike>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined); // only waiters care; they attach their own handlers
    this.#restored = { promise, resolve, reject };
    for (const participant of [...this.#participants]) participant.connectionLost(error);
    if (!this.#options.reconnect) {
      this.#end(error);
      return;
    }
    this.#setState('reconnecting');
    this.#scheduleRetry(0);
  }

  #scheduleRetry(attempt: number): void {
    const { initialDelayMs, maxDelayMs } = this.#options.reconnect || {
      initialDelayMs: 0,
      maxDelayMs: 0,
    };
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30));
    // "Equal jitter": at least half the ceiling, so a fleet does not reconnect in lockstep.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#retryTimer = setTimeout(() => void this.#retry(attempt), delay);
  }

  async #retry(attempt: number): Promise<void> {
    this.#retryTimer = undefined;
    let failure: RpcError | undefined;
    for (const url of this.#options.urls) {
      if (this.#isEnded()) return;
      try {
        const client = await transportOf(this.#options)(url, this.#options);
        if (this.#isEnded()) {
          forceClose(client);
          return;
        }
        this.#restore(client, url);
        return;
      } catch (error) {
        failure = connectError(error, url);
        this.logger.debug({ url: redactUrl(url), attempt, code: failure.code }, failure.message);
        if (isPermanent(failure)) break;
      }
    }
    if (failure && isPermanent(failure)) {
      this.logger.error({ code: failure.code }, `giving up reconnecting: ${failure.message}`);
      // Retrying a refused login or an untrusted certificate would not help, and would
      // hammer the broker.
      this.#end(failure);
      return;
    }
    this.#scheduleRetry(attempt + 1);
  }

  /** Read afresh after each await: close() may have run meanwhile. */
  #isEnded(): boolean {
    return this.#endedWith !== undefined;
  }

  #restore(client: AmqpClientLike, url: string): void {
    this.#adopt(client, url);
    this.#reconnects++;
    this.logger.info({ url: redactUrl(url), reconnects: this.#reconnects }, 'reconnected');
    this.#setState(client.blocked === undefined ? 'connected' : 'blocked');
    for (const participant of [...this.#participants]) participant.connectionRestored(client);
    this.#restored?.resolve(client);
    this.#restored = undefined;
  }

  #end(error: RpcError | undefined): void {
    clearTimeout(this.#retryTimer);
    if (this.#endedWith) return;
    this.#endedWith = error ?? new RpcError('FAILED_PRECONDITION', 'the connection is closed');
    if (error)
      for (const participant of [...this.#participants]) participant.connectionEnded(error);
    this.#restored?.reject(this.#endedWith);
    this.#restored = undefined;
    this.flow.unblock();
    this.#setState('closed');
    this.#resolveEnded(error);
  }

  /** Closes the AMQP connection and stops reconnecting. Participants close themselves first. */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    this.#end(undefined);
    if (client && !client.closed) await closeWithin(client, CLOSE_TIMEOUT_MS);
  }
}

/** How long `close()` waits for the broker's close-ok before it drops the socket. */
const CLOSE_TIMEOUT_MS = 2_000;

/**
 * Closes the connection gracefully, but never waits longer than `timeoutMs`: the AMQP
 * library waits for close-ok for ever if the socket dies during the handshake.
 */
async function closeWithin(client: AmqpClientLike, timeoutMs: number): Promise<void> {
  const closing = client.close().then(
    () => true,
    () => false,
  );
  const closedInTime = await settledWithin(closing, timeoutMs);
  if (!closedInTime || !(await closing)) forceClose(client);
}

/** Opens the first connection, trying each URL in turn; see {@link connect}. */
export async function openLink(options: ResolvedConnectOptions): Promise<Link> {
  let lastError: RpcError | undefined;
  for (const url of options.urls) {
    try {
      return new Link(await transportOf(options)(url, options), url, options);
    } catch (error) {
      lastError = connectError(error, url);
      // A refused login will not get better on the next URL.
      if (lastError.code !== 'UNAVAILABLE' || isPermanent(lastError)) break;
    }
  }
  throw lastError ?? new RpcError('UNAVAILABLE', 'no broker URL given');
}

/** The connection's transport: a real AMQP connection unless `connect()` was given another. */
function transportOf(options: ResolvedConnectOptions): AmqpTransport {
  return options.transport ?? openAmqp;
}
