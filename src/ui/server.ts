import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { RpcError, type RpcConnection } from '../index.js';
import type { InfoResponse, StateResponse, UiLimits } from './api.js';
import { handleBroadcast, handleCall, handleStream, wireError, type ApiContext } from './calls.js';
import { SharedDiscovery } from './discovery.js';
import { bearerToken, hostAllowed, newToken, sameOrigin, tokenMatches } from './guard.js';
import {
  notAllowed,
  prepareRefusal,
  readAssets,
  sendJson,
  serveAsset,
  type Assets,
} from './http.js';
import { Slots, UI_DEFAULT_LIMITS, UI_DEFAULT_TIMEOUT_MS, UI_REFRESH_MS } from './limits.js';

export interface UiServerOptions {
  /** The connection every call goes through; the server does not close it. */
  readonly rpc: RpcConnection;
  /** The folder of the page's files (index.html, app.js, app.css). */
  readonly assets: string;
  /** The address to listen on. @default '127.0.0.1' */
  readonly host?: string;
  /** The port; 0 for any free one. @default 0 */
  readonly port?: number;
  /** The token API requests must carry. @default a new random one */
  readonly token?: string;
  /** The broker as the page shows it: no user name, no password. */
  readonly broker: string;
  /** rabbit-rpc's version, shown on the page. */
  readonly version: string;
  readonly limits?: Partial<UiLimits>;
  /** One line per API request (method, path, status, time), never a body or a header. */
  readonly log?: (line: string) => void;
}

/**
 * The web server of `rabbit-rpc ui`: the page (prebuilt files, read once at start) and a
 * small JSON API over one RpcConnection (src/ui/api.ts). Bounded in what it reads and in the
 * calls it runs at once; see docs/guides/ui.md for its security model.
 */
export class UiServer implements AsyncDisposable {
  readonly #server: Server;
  readonly #options: UiServerOptions;
  readonly #limits: UiLimits;
  readonly #assets: Assets;
  readonly #host: string;
  readonly #port: number;
  /** The token API requests carry (`Authorization: Bearer`). */
  readonly token: string;
  /** Aborted by close(): ends every call and stream in flight. */
  readonly #closing = new AbortController();
  readonly #discovery: SharedDiscovery;
  /** What the API's call handlers share (calls.ts). */
  readonly #api: ApiContext;
  #closed: Promise<void> | undefined;

  private constructor(
    server: Server,
    options: UiServerOptions,
    assets: Assets,
    host: string,
    port: number,
    token: string,
  ) {
    this.#server = server;
    this.#options = options;
    this.#limits = { ...UI_DEFAULT_LIMITS, ...options.limits };
    this.#assets = assets;
    this.#host = host;
    this.#port = port;
    this.token = token;
    this.#discovery = new SharedDiscovery(options.rpc, this.#closing.signal);
    this.#api = {
      rpc: options.rpc,
      limits: this.#limits,
      slots: new Slots(this.#limits),
      closing: this.#closing.signal,
      scrub: (text) => this.#scrub(text),
    };
  }

  /** Reads the page's files, then listens; rejects when a file is missing or the port is taken. */
  static async start(options: UiServerOptions): Promise<UiServer> {
    const assets = await readAssets(options.assets);
    const host = options.host ?? '127.0.0.1';
    const server = createServer({
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      maxHeaderSize: 16 * 1024,
    });
    server.maxConnections = 256;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        server.off('listening', onListening);
        reject(
          new RpcError(
            'UNAVAILABLE',
            `cannot listen on ${host}:${options.port ?? 0}: ${error.message}`,
          ),
        );
      };
      const onListening = (): void => {
        server.off('error', onError);
        resolve();
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(options.port ?? 0, host);
    });
    const { port } = server.address() as AddressInfo;
    const ui = new UiServer(server, options, assets, host, port, options.token ?? newToken());
    server.on('request', (request: IncomingMessage, response: ServerResponse) => {
      ui.#handle(request, response).catch((error: unknown) => ui.#fail(response, error));
    });
    // After listening, an error of the server (out of file descriptors) is logged, never thrown.
    server.on('error', (error) => options.log?.(`ui server: ${error.message}`));
    server.on('clientError', (_error, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    return ui;
  }

  /** The server's address: `http://127.0.0.1:PORT/`. */
  get url(): string {
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    const shown = host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host;
    return `http://${shown}:${this.#port}/`;
  }

  /** The address to open: the URL with the token in its fragment (never sent over HTTP). */
  get pageUrl(): string {
    return `${this.url}#token=${this.token}`;
  }

  get port(): number {
    return this.#port;
  }

  /** Stops listening and ends every call and stream in flight. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing.abort();
      const closed = once(this.#server, 'close');
      this.#server.close();
      this.#server.closeIdleConnections();
      // Streams end on the abort above; anything still open after a moment is cut.
      const cut = setTimeout(() => this.#server.closeAllConnections(), 1_000);
      await closed;
      clearTimeout(cut);
    })();
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const started = performance.now();
    const pathname = new URL(request.url ?? '/', 'http://x').pathname;
    response.once('close', () => {
      // Calls and refusals; not the page's files nor its refreshes every few seconds.
      if (request.method !== 'POST' && response.statusCode < 400) return;
      this.#options.log?.(
        `${request.method ?? '?'} ${pathname} ${response.statusCode} ${Math.round(performance.now() - started)}ms`,
      );
    });
    request.on('error', () => undefined); // a reset connection: the response's 'close' says it
    response.on('error', () => undefined);
    if (!hostAllowed(request.headers.host, this.#host, this.#port)) {
      throw new RpcError(
        'PERMISSION_DENIED',
        'this Host is not allowed: use localhost, an IP address or the --host name',
      );
    }
    if (!pathname.startsWith('/api/')) return serveAsset(this.#assets, request, response, pathname);
    if (!tokenMatches(bearerToken(request), this.token)) {
      throw new RpcError(
        'UNAUTHENTICATED',
        'missing or wrong token: open the address rabbit-rpc ui printed (…/#token=…)',
      );
    }
    const route = `${request.method ?? ''} ${pathname}`;
    if (request.method === 'POST' && !sameOrigin(request)) {
      throw new RpcError('PERMISSION_DENIED', 'a request from another origin');
    }
    switch (route) {
      case 'GET /api/info':
        return this.#json(response, 200, this.#info());
      case 'GET /api/state':
        return this.#json(response, 200, this.#state());
      case 'GET /api/services':
        return this.#json(response, 200, await this.#discovery.services());
      case 'POST /api/call':
        return handleCall(this.#api, request, response);
      case 'POST /api/broadcast':
        return handleBroadcast(this.#api, request, response);
      case 'POST /api/stream':
        return handleStream(this.#api, request, response);
      default:
        if (['/api/info', '/api/state', '/api/services'].includes(pathname)) {
          throw notAllowed('GET');
        }
        if (['/api/call', '/api/broadcast', '/api/stream'].includes(pathname)) {
          throw notAllowed('POST');
        }
        throw new RpcError('NOT_FOUND', `no API ${pathname}`);
    }
  }

  #info(): InfoResponse {
    return {
      version: this.#options.version,
      broker: this.#options.broker,
      state: this.#options.rpc.state,
      refreshMs: UI_REFRESH_MS,
      defaultTimeoutMs: UI_DEFAULT_TIMEOUT_MS,
      limits: this.#limits,
    };
  }

  #state(): StateResponse {
    const { rpc } = this.#options;
    return { state: rpc.state, reconnects: rpc.stats().reconnects };
  }

  /** The connection's URL (user and hidden password) replaced by the broker as shown. */
  #scrub(text: string): string {
    return text.split(this.#options.rpc.url).join(this.#options.broker);
  }

  #json(response: ServerResponse, status: number, value: unknown): void {
    sendJson(response, status, value, (text) => this.#scrub(text));
  }

  #fail(response: ServerResponse, error: unknown): void {
    const rpcError = RpcError.from(error, 'INTERNAL');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const status = prepareRefusal(response, rpcError);
    this.#json(response, status, { error: wireError(this.#api, rpcError) });
  }
}
