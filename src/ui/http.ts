/** The HTTP side of the ui server: security headers, the page's files, JSON and SSE, refusals. */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import path from 'node:path';
import { RpcError } from '../index.js';
import { statusOf } from './guard.js';

/** Headers of every response: the page runs only its own script, in no frame. */
export const SECURITY_HEADERS: OutgoingHttpHeaders = {
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

/** The page's files by path (`/app.js`), read once at start. */
export type Assets = ReadonlyMap<string, { type: string; body: Buffer }>;

const ASSETS: ReadonlyArray<[file: string, type: string]> = [
  ['index.html', 'text/html; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
];

export async function readAssets(dir: string): Promise<Assets> {
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

/** Answers GET and HEAD for the page's files. */
export function serveAsset(
  assets: Assets,
  request: IncomingMessage,
  response: ServerResponse,
  pathname: string,
): void {
  if (request.method !== 'GET' && request.method !== 'HEAD') throw notAllowed('GET');
  if (pathname === '/favicon.ico') {
    response.writeHead(204, SECURITY_HEADERS).end();
    return;
  }
  const asset = assets.get(pathname === '/' ? '/index.html' : pathname);
  if (asset === undefined) throw new RpcError('NOT_FOUND', `no page ${pathname}`);
  response.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': asset.type,
    'Content-Length': asset.body.length,
    'Cache-Control': 'no-cache',
  });
  response.end(request.method === 'HEAD' ? undefined : asset.body);
}

/** Sends `value` as JSON, its text passed through `scrub` (which hides the broker's credentials). */
export function sendJson(
  response: ServerResponse,
  status: number,
  value: unknown,
  scrub: (text: string) => string,
): void {
  if (response.headersSent || response.destroyed) return;
  const body = Buffer.from(scrub(JSON.stringify(value)));
  response.writeHead(status, {
    ...SECURITY_HEADERS,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
  });
  response.end(body);
}

/**
 * Prepares the response of a refusal: its HTTP status (returned), `Allow` for a wrong method,
 * and `Connection: close` when the body was left unread.
 */
export function prepareRefusal(response: ServerResponse, error: RpcError): number {
  if (error.code === 'UNIMPLEMENTED' && typeof error.details === 'object') {
    response.setHeader('Allow', String((error.details as { allow?: string }).allow));
  }
  const status =
    error.code === 'RESOURCE_EXHAUSTED' && /larger than/.test(error.message)
      ? 413
      : statusOf(error.code);
  // A body left unread (too large, refused before reading): close rather than read it all.
  if (status === 413 || !response.req.complete) response.setHeader('Connection', 'close');
  return status;
}

export function notAllowed(allow: string): RpcError {
  return new RpcError('UNIMPLEMENTED', `method not allowed here (use ${allow})`, {
    details: { allow },
  });
}

/** One server-sent event. */
export function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
