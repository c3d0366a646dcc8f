/**
 * Streamed replies (docs/protocol.md, "Streams"): the caller asks for a stream with a
 * window (`rpc-stream-window`); the server answers with numbered items and an `end`.
 */
import type { AmqpField } from '../transport/types.js';
import { STREAM_WINDOW_HEADER } from './names.js';

/** The largest stream window a server honours: a caller cannot make it buffer more. */
export const MAX_STREAM_WINDOW = 10_000;

/** The stream window a request asks for, if it asks for a stream; 1 to MAX_STREAM_WINDOW. */
export function readWindow(
  headers: Readonly<Record<string, AmqpField>> | undefined,
): number | undefined {
  const value = headers?.[STREAM_WINDOW_HEADER];
  const window = typeof value === 'bigint' ? Number(value) : value;
  if (typeof window !== 'number' || !Number.isFinite(window)) return undefined;
  return Math.min(MAX_STREAM_WINDOW, Math.max(1, Math.floor(window)));
}
