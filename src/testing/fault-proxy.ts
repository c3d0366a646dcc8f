import net from 'node:net';
import { checkOptionNames, optionNames } from '../option-names.js';

/**
 * How a {@link FaultProxy} treats traffic:
 * - `'pass'`: forwards bytes both ways (after `latencyMs`, if set);
 * - `'blackhole'`: keeps every socket open but drops all bytes, and does not pass on a
 *   close from either side (a dead network, detectable only by heartbeats or timeouts);
 * - `'reset'`: resets (TCP RST) every current connection, and each new one at once;
 * - `'refuse'`: closes each new connection at once (existing ones keep working).
 */
export type FaultMode = 'pass' | 'blackhole' | 'reset' | 'refuse';

/** Where a {@link FaultProxy} forwards to: an amqp(s):// URL, a port on 127.0.0.1, or host and port. */
export type FaultProxyTarget = string | number | { host?: string; port: number };

/** Options of {@link FaultProxy.start}. */
export interface FaultProxyOptions {
  /** Port to listen on, on 127.0.0.1. @default a free port picked by the OS */
  port?: number;
  /** One-way delay added to every chunk in `'pass'` mode, in ms. @default 0 */
  latencyMs?: number;
}

const OPTION_NAMES = optionNames({ port: true, latencyMs: true } satisfies Record<
  keyof FaultProxyOptions,
  true
>);

/** One proxied connection: the client's socket and ours to the target. */
interface Link {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Sides that have closed while the other may still be open (kept open in blackhole). */
  readonly closed: Set<net.Socket>;
  readonly timers: Set<NodeJS.Timeout>;
}

const noop = () => undefined;

/**
 * An in-process TCP proxy for fault tests: point a client at it (`proxy.url(broker.url)`)
 * and break the network between them at will. Listens on 127.0.0.1 only; never emits
 * unhandled 'error' events.
 *
 * @example
 * ```ts
 * await using proxy = await FaultProxy.start(broker.url);
 * const rpc = await connect(proxy.url(broker.url));
 * proxy.resetAll(); // the connection drops now
 * ```
 */
export class FaultProxy implements AsyncDisposable {
  /** Always 127.0.0.1. */
  readonly host = '127.0.0.1';
  /** The port the proxy listens on. */
  readonly port: number;
  /** Where traffic goes. */
  readonly target: { readonly host: string; readonly port: number };
  readonly #server: net.Server;
  readonly #links = new Set<Link>();
  #mode: FaultMode = 'pass';
  #latencyMs: number;
  #accepted = 0;
  readonly #idleWaiters: Array<() => void> = [];
  #closing: Promise<void> | undefined;

  private constructor(
    server: net.Server,
    port: number,
    target: { host: string; port: number },
    latencyMs: number,
  ) {
    this.#server = server;
    this.port = port;
    this.target = target;
    this.#latencyMs = latencyMs;
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Starts a proxy to `target` and resolves once it listens. */
  static start(target: FaultProxyTarget, options: FaultProxyOptions = {}): Promise<FaultProxy> {
    checkOptionNames(options, OPTION_NAMES, 'FaultProxy.start()');
    const resolvedTarget = resolveTarget(target);
    const latencyMs = checkLatency(options.latencyMs ?? 0);
    const server = net.createServer({ noDelay: true });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        server.on('error', noop);
        const address = server.address();
        const port = typeof address === 'object' && address !== null ? address.port : 0;
        resolve(new FaultProxy(server, port, resolvedTarget, latencyMs));
      });
    });
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  /** One-way delay in ms added in `'pass'` mode. */
  get latencyMs(): number {
    return this.#latencyMs;
  }

  /**
   * Client connections open through the proxy right now (a client that closed its side
   * does not count, even while a blackhole holds the target's side open).
   */
  get connections(): number {
    let open = 0;
    for (const link of this.#links) if (!link.closed.has(link.client)) open++;
    return open;
  }

  /**
   * Resolves once no client connection is open through the proxy (at once if none is):
   * for asserting that a client dropped its socket.
   */
  idle(): Promise<void> {
    if (this.connections === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || this.connections > 0) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  /** Connections accepted since the proxy started (refused and reset ones included). */
  get accepted(): number {
    return this.#accepted;
  }

  /** `amqpUrl` with host and port replaced by the proxy's (credentials, vhost, query kept). */
  url(amqpUrl = 'amqp://guest:guest@localhost:5672'): string {
    const url = new URL(amqpUrl);
    url.hostname = this.host;
    url.port = String(this.port);
    return url.toString();
  }

  /** Switches the mode; see {@link FaultMode}. `'reset'` resets current connections at once. */
  setMode(mode: FaultMode): void {
    if (!['pass', 'blackhole', 'reset', 'refuse'].includes(mode)) {
      throw new TypeError(`unknown fault mode ${JSON.stringify(mode)}`);
    }
    const leavingBlackhole = this.#mode === 'blackhole' && mode !== 'blackhole';
    this.#mode = mode;
    if (mode === 'reset') this.resetAll();
    else if (leavingBlackhole) {
      // Closes that the blackhole held back go through now.
      for (const link of [...this.#links]) {
        for (const side of link.closed) this.#propagateClose(link, side, false);
      }
    }
  }

  /** Forwards traffic again (the default). */
  pass(): void {
    this.setMode('pass');
  }

  /** Drops every byte both ways and holds back closes; sockets stay open. */
  blackhole(): void {
    this.setMode('blackhole');
  }

  /** Closes new connections at once; current ones keep working. */
  refuse(): void {
    this.setMode('refuse');
  }

  /** Sets the one-way delay added to every chunk (`0` turns it off). */
  setLatency(ms: number): void {
    this.#latencyMs = checkLatency(ms);
  }

  /** Resets (TCP RST) every current connection, both sides; the mode stays as it is. */
  resetAll(): void {
    for (const link of [...this.#links]) this.#destroyLink(link, true);
  }

  #onConnection(client: net.Socket): void {
    this.#accepted++;
    client.on('error', noop);
    if (this.#mode === 'refuse') {
      client.destroy();
      return;
    }
    if (this.#mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
    upstream.on('error', noop);
    const link: Link = { client, upstream, closed: new Set(), timers: new Set() };
    this.#links.add(link);
    this.#forward(link, client, upstream);
    this.#forward(link, upstream, client);
    client.on('close', (hadError) => this.#onSideClosed(link, client, hadError));
    upstream.on('close', (hadError) => this.#onSideClosed(link, upstream, hadError));
  }

  #forward(link: Link, from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.#mode === 'blackhole') return;
      if (this.#latencyMs > 0) {
        const timer = setTimeout(() => {
          link.timers.delete(timer);
          if (!to.destroyed) to.write(chunk);
        }, this.#latencyMs);
        link.timers.add(timer);
        return;
      }
      if (to.destroyed) return;
      // Back-pressure: stop reading until the other side drains.
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
    });
  }

  #onSideClosed(link: Link, side: net.Socket, hadError: boolean): void {
    if (!this.#links.has(link)) return;
    link.closed.add(side);
    this.#checkIdle();
    if (link.closed.size === 2) {
      this.#destroyLink(link, false);
      return;
    }
    // A dead network does not carry the news that the other side went away.
    if (this.#mode === 'blackhole') return;
    this.#propagateClose(link, side, hadError);
  }

  #propagateClose(link: Link, closedSide: net.Socket, hadError: boolean): void {
    const other = closedSide === link.client ? link.upstream : link.client;
    const close = () => {
      if (hadError) this.#destroyLink(link, true);
      else {
        other.end();
        // Give it a moment to flush, then make sure it is gone.
        setTimeout(() => this.#destroyLink(link, false), 1000).unref();
      }
    };
    // In-flight delayed chunks go first.
    if (this.#latencyMs > 0) setTimeout(close, this.#latencyMs).unref();
    else close();
  }

  #destroyLink(link: Link, reset: boolean): void {
    this.#links.delete(link);
    this.#checkIdle();
    for (const timer of link.timers) clearTimeout(timer);
    link.timers.clear();
    for (const socket of [link.client, link.upstream]) {
      if (socket.destroyed) continue;
      if (reset && !socket.connecting) socket.resetAndDestroy();
      else socket.destroy();
    }
  }

  /** Stops listening and destroys every connection. Idempotent; never rejects. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const link of [...this.#links]) this.#destroyLink(link, false);
    });
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function resolveTarget(target: FaultProxyTarget): { host: string; port: number } {
  if (typeof target === 'number') return { host: '127.0.0.1', port: target };
  if (typeof target === 'string') {
    const url = new URL(target);
    const port = url.port ? Number(url.port) : url.protocol === 'amqps:' ? 5671 : 5672;
    return { host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port };
  }
  return { host: target.host ?? '127.0.0.1', port: target.port };
}

function checkLatency(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0)
    throw new TypeError(`latencyMs must be a number >= 0; got ${String(ms)}`);
  return ms;
}
