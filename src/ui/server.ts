import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  RpcError,
  type CallOptions,
  type RpcConnection,
  type ServiceDescription,
  type StreamOptions,
} from '../index.js';
import type {
  ApiError,
  BroadcastOutcome,
  BroadcastRow,
  CallOutcome,
  InfoResponse,
  ServicesResponse,
  StreamEndEvent,
  StreamItemEvent,
  UiLimits,
  WireService,
} from './api.js';
import { readJsonBody } from './body.js';
import { bearerToken, hostAllowed, newToken, sameOrigin, statusOf, tokenMatches } from './guard.js';

/** The bounds of a ui server unless told otherwise. */
export const UI_DEFAULT_LIMITS: UiLimits = {
  maxBodyBytes: 1024 * 1024,
  maxJsonDepth: 64,
  maxCalls: 32,
  maxStreams: 8,
  maxTimeoutMs: 600_000,
};
/** The deadline of a call from the page that gives none. */
export const UI_DEFAULT_TIMEOUT_MS = 10_000;
/** How often the page asks for the services. */
export const UI_REFRESH_MS = 3_000;
const DISCOVERY_TIMEOUT_MS = 1_000;
const MAX_NAME_BYTES = 255;
const MAX_WINDOW = 10_000;
const MAX_BROADCAST_REPLIES = 1_000;

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
  readonly #assets: ReadonlyMap<string, { type: string; body: Buffer }>;
  readonly #host: string;
  readonly #port: number;
  /** The token API requests carry (`Authorization: Bearer`). */
  readonly token: string;
  /** Aborted by close(): ends every call and stream in flight. */
  readonly #closing = new AbortController();
  #calls = 0;
  #streams = 0;
  #discovery: Promise<ServicesResponse> | undefined;
  #closed: Promise<void> | undefined;

  private constructor(
    server: Server,
    options: UiServerOptions,
    assets: ReadonlyMap<string, { type: string; body: Buffer }>,
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
    if (!pathname.startsWith('/api/')) return this.#static(request, response, pathname);
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
      case 'GET /api/services':
        return this.#json(response, 200, await this.#services());
      case 'POST /api/call':
        return this.#call(request, response);
      case 'POST /api/broadcast':
        return this.#broadcast(request, response);
      case 'POST /api/stream':
        return this.#stream(request, response);
      default:
        if (['/api/info', '/api/services'].includes(pathname)) throw notAllowed('GET');
        if (['/api/call', '/api/broadcast', '/api/stream'].includes(pathname)) {
          throw notAllowed('POST');
        }
        throw new RpcError('NOT_FOUND', `no API ${pathname}`);
    }
  }

  #static(request: IncomingMessage, response: ServerResponse, pathname: string): void {
    if (request.method !== 'GET' && request.method !== 'HEAD') throw notAllowed('GET');
    if (pathname === '/favicon.ico') {
      response.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const asset = this.#assets.get(pathname === '/' ? '/index.html' : pathname);
    if (asset === undefined) throw new RpcError('NOT_FOUND', `no page ${pathname}`);
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': asset.type,
      'Content-Length': asset.body.length,
      'Cache-Control': 'no-cache',
    });
    response.end(request.method === 'HEAD' ? undefined : asset.body);
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

  /** Discovery, shared: requests that come while one runs get its answer. */
  #services(): Promise<ServicesResponse> {
    this.#discovery ??= (async () => {
      const started = performance.now();
      try {
        const services = await this.#options.rpc.services({
          timeoutMs: DISCOVERY_TIMEOUT_MS,
          signal: this.#closing.signal,
        });
        return {
          services: services.map(wireService),
          at: Date.now(),
          tookMs: Math.round(performance.now() - started),
        };
      } finally {
        this.#discovery = undefined;
      }
    })();
    return this.#discovery;
  }

  async #call(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await this.#body(request);
    const call = this.#callArgs(body, ['queue', 'method', 'request', 'timeoutMs']);
    const release = this.#take('calls');
    const signal = this.#until(response);
    const options: CallOptions = { timeoutMs: call.timeoutMs, signal };
    if (call.method !== undefined) options.method = call.method;
    const started = performance.now();
    let outcome: CallOutcome;
    try {
      const reply = await this.#options.rpc.call(call.queue, call.request, options);
      outcome = { ok: true, ...wireValue(reply), latencyMs: elapsed(started) };
    } catch (error) {
      outcome = { ok: false, error: this.#wireError(error), latencyMs: elapsed(started) };
    } finally {
      release();
    }
    this.#json(response, 200, outcome);
  }

  async #broadcast(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await this.#body(request);
    const call = this.#callArgs(body, ['queue', 'request', 'timeoutMs', 'max']);
    const max = optionalInteger(body, 'max', 1, MAX_BROADCAST_REPLIES) ?? MAX_BROADCAST_REPLIES;
    const release = this.#take('calls');
    const signal = this.#until(response);
    const started = performance.now();
    let outcome: BroadcastOutcome | undefined;
    try {
      const replies = await this.#options.rpc.broadcast(call.queue, call.request, {
        timeoutMs: call.timeoutMs,
        max,
        signal,
      });
      const rows = replies.map((reply): BroadcastRow =>
        reply.ok
          ? { instance: reply.instance, ok: true, reply: wireValue(reply.reply).reply }
          : { instance: reply.instance, ok: false, error: this.#wireError(reply.error) },
      );
      outcome = { replies: rows, latencyMs: elapsed(started) };
    } finally {
      release();
    }
    this.#json(response, 200, outcome);
  }

  async #stream(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await this.#body(request);
    const call = this.#callArgs(body, ['queue', 'method', 'request', 'timeoutMs', 'window']);
    const window = optionalInteger(body, 'window', 1, MAX_WINDOW);
    const release = this.#take('streams');
    // Closing the response (the page's Stop, a closed tab) aborts this: the loop below ends
    // and leaving it cancels the stream on the server.
    const signal = this.#until(response);
    const options: StreamOptions = { timeoutMs: call.timeoutMs, signal };
    if (window !== undefined) options.window = window;
    if (call.method !== undefined) options.method = call.method;
    const started = performance.now();
    let count = 0;
    let failure: ApiError | undefined;
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
    });
    response.flushHeaders();
    try {
      const stream = this.#options.rpc.stream(call.queue, call.request, options);
      for await (const item of stream) {
        if (signal.aborted) break;
        count++;
        const event: StreamItemEvent = { seq: count, ...itemValue(item), atMs: elapsed(started) };
        if (!response.write(sse('item', event))) await once(response, 'drain', { signal });
      }
    } catch (error) {
      failure = this.#wireError(error);
    } finally {
      release();
    }
    if (response.writableEnded || response.destroyed) return;
    const end: StreamEndEvent =
      failure === undefined
        ? { count, latencyMs: elapsed(started) }
        : { count, latencyMs: elapsed(started), error: failure };
    response.end(sse('end', end));
  }

  async #body(request: IncomingMessage): Promise<Record<string, unknown>> {
    const body = await readJsonBody(request, this.#limits.maxBodyBytes, this.#limits.maxJsonDepth);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new RpcError('INVALID_ARGUMENT', 'the body must be a JSON object');
    }
    return body as Record<string, unknown>;
  }

  /** The queue, method, request and deadline of a body; unknown fields are refused. */
  #callArgs(body: Record<string, unknown>, allowed: readonly string[]) {
    for (const name of Object.keys(body)) {
      if (!allowed.includes(name)) {
        throw new RpcError(
          'INVALID_ARGUMENT',
          `unknown field "${name}"; the fields are ${allowed.join(', ')}`,
        );
      }
    }
    const queue = name(body['queue'], 'queue');
    if (queue === undefined) throw new RpcError('INVALID_ARGUMENT', 'queue is required');
    const method = name(body['method'], 'method');
    const timeoutMs =
      optionalInteger(body, 'timeoutMs', 1, this.#limits.maxTimeoutMs) ?? UI_DEFAULT_TIMEOUT_MS;
    return { queue, method, request: body['request'] ?? null, timeoutMs };
  }

  /** Takes one of the call or stream slots; RESOURCE_EXHAUSTED when none is free. */
  #take(kind: 'calls' | 'streams'): () => void {
    const max = kind === 'calls' ? this.#limits.maxCalls : this.#limits.maxStreams;
    const inUse = kind === 'calls' ? this.#calls : this.#streams;
    if (inUse >= max) {
      throw new RpcError(
        'RESOURCE_EXHAUSTED',
        `${max} ${kind} are in flight already, the most this server runs at once`,
        { details: { max } },
      );
    }
    if (kind === 'calls') this.#calls++;
    else this.#streams++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (kind === 'calls') this.#calls--;
      else this.#streams--;
    };
  }

  /** A signal that aborts when the response closes before it is finished, or on close(). */
  #until(response: ServerResponse): AbortSignal {
    const gone = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) gone.abort(new RpcError('CANCELLED', 'the page went away'));
    });
    return AbortSignal.any([gone.signal, this.#closing.signal]);
  }

  #wireError(error: unknown): ApiError {
    const rpcError = RpcError.from(error, 'UNKNOWN');
    const wire: ApiError = { code: rpcError.code, message: this.#scrub(rpcError.message) };
    return rpcError.details === undefined ? wire : { ...wire, details: rpcError.details };
  }

  /** The connection's URL (user and hidden password) replaced by the broker as shown. */
  #scrub(text: string): string {
    return text.split(this.#options.rpc.url).join(this.#options.broker);
  }

  #json(response: ServerResponse, status: number, value: unknown): void {
    if (response.headersSent || response.destroyed) return;
    const body = Buffer.from(this.#scrub(JSON.stringify(value)));
    response.writeHead(status, {
      ...SECURITY_HEADERS,
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': body.length,
      'Cache-Control': 'no-store',
    });
    response.end(body);
  }

  #fail(response: ServerResponse, error: unknown): void {
    const rpcError = RpcError.from(error, 'INTERNAL');
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const extra: OutgoingHttpHeaders =
      rpcError.code === 'UNIMPLEMENTED' && typeof rpcError.details === 'object'
        ? { Allow: String((rpcError.details as { allow?: string }).allow) }
        : {};
    const status =
      rpcError.code === 'RESOURCE_EXHAUSTED' && /larger than/.test(rpcError.message)
        ? 413
        : statusOf(rpcError.code);
    for (const [header, value] of Object.entries(extra)) response.setHeader(header, String(value));
    // A body left unread (too large, refused before reading): close rather than read it all.
    if (status === 413 || !response.req.complete) response.setHeader('Connection', 'close');
    this.#json(response, status, { error: this.#wireError(rpcError) });
  }
}

/** Headers of every response: the page runs only its own script, in no frame. */
const SECURITY_HEADERS: OutgoingHttpHeaders = {
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const ASSETS: ReadonlyArray<[file: string, type: string]> = [
  ['index.html', 'text/html; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
];

async function readAssets(dir: string): Promise<Map<string, { type: string; body: Buffer }>> {
  const assets = new Map<string, { type: string; body: Buffer }>();
  for (const [file, type] of ASSETS) {
    try {
      assets.set(`/${file}`, { type, body: await readFile(path.join(dir, file)) });
    } catch {
      throw new RpcError(
        'FAILED_PRECONDITION',
        `the page's file ${file} is missing from ${dir}: build the package (npm run build)`,
      );
    }
  }
  return assets;
}

function notAllowed(allow: string): RpcError {
  return new RpcError('UNIMPLEMENTED', `method not allowed here (use ${allow})`, {
    details: { allow },
  });
}

function name(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw new RpcError('INVALID_ARGUMENT', `${field} must be a non-empty string`);
  }
  if (Buffer.byteLength(value) > MAX_NAME_BYTES) {
    throw new RpcError('INVALID_ARGUMENT', `${field} is longer than ${MAX_NAME_BYTES} bytes`);
  }
  return value;
}

function optionalInteger(
  body: Record<string, unknown>,
  field: string,
  min: number,
  max: number,
): number | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RpcError('INVALID_ARGUMENT', `${field} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A reply as JSON: bytes as base64 with `binary: true`. */
function wireValue(value: unknown): { reply: unknown; binary?: true } {
  return value instanceof Uint8Array
    ? { reply: Buffer.from(value).toString('base64'), binary: true }
    : { reply: value };
}

function itemValue(value: unknown): { item: unknown; binary?: true } {
  const { reply, binary } = wireValue(value);
  return binary ? { item: reply, binary } : { item: reply };
}

/** A service description as the page reads it (the same shape: checked by the compiler). */
function wireService(service: ServiceDescription): WireService {
  return service;
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
