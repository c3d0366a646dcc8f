/** The API's calls: POST /api/call, /api/broadcast and /api/stream, over one RpcConnection. */
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { RpcError, type CallOptions, type RpcConnection, type StreamOptions } from '../index.js';
import type {
  ApiError,
  BroadcastOutcome,
  BroadcastRow,
  CallOutcome,
  StreamEndEvent,
  StreamItemEvent,
  UiLimits,
} from './api.js';
import { readJsonBody } from './body.js';
import { callArgs, optionalInteger } from './call-args.js';
import { SECURITY_HEADERS, sendJson, sse } from './http.js';
import type { Slots } from './limits.js';

const MAX_WINDOW = 10_000;
const MAX_BROADCAST_REPLIES = 1_000;

/** What the handlers share with the server that runs them. */
export interface ApiContext {
  readonly rpc: RpcConnection;
  readonly limits: UiLimits;
  readonly slots: Slots;
  /** Aborted when the server closes: ends every call and stream in flight. */
  readonly closing: AbortSignal;
  /** The text with the connection's URL (user, hidden password) replaced by the broker as shown. */
  scrub(text: string): string;
}

export async function handleCall(
  api: ApiContext,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const body = await readBody(api, request);
  const call = callArgs(body, ['queue', 'method', 'request', 'timeoutMs'], api.limits);
  const release = api.slots.take('calls');
  const signal = untilClosed(api, response);
  const options: CallOptions = { timeoutMs: call.timeoutMs, signal };
  if (call.method !== undefined) options.method = call.method;
  const started = performance.now();
  let outcome: CallOutcome;
  try {
    const reply = await api.rpc.call(call.queue, call.request, options);
    outcome = { ok: true, ...wireValue(reply), latencyMs: elapsed(started) };
  } catch (error) {
    outcome = { ok: false, error: wireError(api, error), latencyMs: elapsed(started) };
  } finally {
    release();
  }
  sendJson(response, 200, outcome, (text) => api.scrub(text));
}

export async function handleBroadcast(
  api: ApiContext,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const body = await readBody(api, request);
  const call = callArgs(body, ['queue', 'request', 'timeoutMs', 'max'], api.limits);
  const max = optionalInteger(body, 'max', 1, MAX_BROADCAST_REPLIES) ?? MAX_BROADCAST_REPLIES;
  const release = api.slots.take('calls');
  const signal = untilClosed(api, response);
  const started = performance.now();
  let outcome: BroadcastOutcome | undefined;
  try {
    const replies = await api.rpc.broadcast(call.queue, call.request, {
      timeoutMs: call.timeoutMs,
      max,
      signal,
    });
    const rows = replies.map((reply): BroadcastRow =>
      reply.ok
        ? { instance: reply.instance, ok: true, reply: wireValue(reply.reply).reply }
        : { instance: reply.instance, ok: false, error: wireError(api, reply.error) },
    );
    outcome = { replies: rows, latencyMs: elapsed(started) };
  } finally {
    release();
  }
  sendJson(response, 200, outcome, (text) => api.scrub(text));
}

/** A stream as server-sent events: one `item` event per item, then one `end`. */
export async function handleStream(
  api: ApiContext,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const body = await readBody(api, request);
  const call = callArgs(body, ['queue', 'method', 'request', 'timeoutMs', 'window'], api.limits);
  const window = optionalInteger(body, 'window', 1, MAX_WINDOW);
  const release = api.slots.take('streams');
  // Closing the response (the page's Stop, a closed tab) aborts this: the loop below ends
  // and leaving it cancels the stream on the server.
  const signal = untilClosed(api, response);
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
    for await (const item of api.rpc.stream(call.queue, call.request, options)) {
      if (signal.aborted) break;
      count++;
      const event: StreamItemEvent = { seq: count, ...itemValue(item), atMs: elapsed(started) };
      if (!response.write(sse('item', event))) await once(response, 'drain', { signal });
    }
  } catch (error) {
    failure = wireError(api, error);
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

/** An error as the page reads it, credentials scrubbed from its message. */
export function wireError(api: ApiContext, error: unknown): ApiError {
  const rpcError = RpcError.from(error, 'UNKNOWN');
  const wire: ApiError = { code: rpcError.code, message: api.scrub(rpcError.message) };
  return rpcError.details === undefined ? wire : { ...wire, details: rpcError.details };
}

async function readBody(
  api: ApiContext,
  request: IncomingMessage,
): Promise<Record<string, unknown>> {
  const body = await readJsonBody(request, api.limits.maxBodyBytes, api.limits.maxJsonDepth);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RpcError('INVALID_ARGUMENT', 'the body must be a JSON object');
  }
  return body as Record<string, unknown>;
}

/** A signal that aborts when the response closes before it is finished, or on close(). */
function untilClosed(api: ApiContext, response: ServerResponse): AbortSignal {
  const gone = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) gone.abort(new RpcError('CANCELLED', 'the page went away'));
  });
  return AbortSignal.any([gone.signal, api.closing]);
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

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}
