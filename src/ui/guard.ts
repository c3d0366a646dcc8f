import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { RpcError } from '../index.js';

/**
 * Who may use the ui server (docs/guides/ui.md, "Security"): every request must name an
 * allowed host (DNS rebinding), every API request must carry the token, and a request
 * that changes anything must come from the page itself (Origin, Sec-Fetch-Site).
 */

/** A new random token: 32 bytes, base64url (43 characters). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Compares `given` with `token` in time that does not depend on where they differ. */
export function tokenMatches(given: string | undefined, token: string): boolean {
  if (given === undefined) return false;
  // Hashing first gives both sides the same length, whatever was sent.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header);
  return match?.[1];
}

/**
 * The Host header's check against DNS rebinding: a page of another site whose name was
 * pointed at 127.0.0.1 sends its own name as Host. Allowed: `localhost`, an IP address, or
 * the name the server was started with (`--host`), each with the server's port.
 */
export function hostAllowed(hostHeader: string | undefined, bindHost: string, port: number) {
  if (hostHeader === undefined) return false;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(hostHeader);
  if (match === null) return false;
  const name = (match[1] ?? '').toLowerCase();
  const givenPort = match[2] === undefined ? 80 : Number(match[2]);
  if (givenPort !== port) return false;
  const bare = name.startsWith('[') ? name.slice(1, -1) : name;
  return bare === 'localhost' || isIP(bare) !== 0 || bare === bindHost.toLowerCase();
}

/**
 * A request that changes something (POST) must come from the page: no Origin (a program,
 * not a browser) or the server's own origin, and no cross-site fetch metadata.
 */
export function sameOrigin(request: IncomingMessage): boolean {
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== `http://${request.headers.host ?? ''}`) return false;
  const site = request.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin' || site === 'none';
}

/** HTTP status of an API error with this code. */
export function statusOf(code: string): number {
  switch (code) {
    case 'INVALID_ARGUMENT':
    case 'FAILED_PRECONDITION':
    case 'OUT_OF_RANGE':
      return 400;
    case 'UNAUTHENTICATED':
      return 401;
    case 'PERMISSION_DENIED':
      return 403;
    case 'NOT_FOUND':
      return 404;
    case 'RESOURCE_EXHAUSTED':
      return 429;
    case 'UNIMPLEMENTED':
      return 405;
    case 'UNAVAILABLE':
      return 503;
    case 'DEADLINE_EXCEEDED':
      return 504;
    default:
      return 500;
  }
}

/** An error of the API (not of a call): thrown by the checks, answered as JSON. */
export function apiError(code: 'INVALID_ARGUMENT' | 'RESOURCE_EXHAUSTED', message: string) {
  return new RpcError(code, message);
}
