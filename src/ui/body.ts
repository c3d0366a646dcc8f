import type { IncomingMessage } from 'node:http';
import { RpcError } from '../index.js';

/**
 * Reads a JSON request body within bounds: at most `maxBytes` (RESOURCE_EXHAUSTED past
 * it, before reading further), `application/json` only (a form post of another site is
 * not one), nested at most `maxDepth` deep (checked on the text, before parsing).
 */
export async function readJsonBody(
  request: IncomingMessage,
  maxBytes: number,
  maxDepth: number,
): Promise<unknown> {
  const type = request.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new RpcError(
      'INVALID_ARGUMENT',
      'the body must be JSON (Content-Type: application/json)',
    );
  }
  const declared = Number(request.headers['content-length'] ?? NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const depth = jsonDepth(text);
  if (depth > maxDepth) {
    throw new RpcError(
      'INVALID_ARGUMENT',
      `the body nests deeper than ${maxDepth} levels (found ${depth})`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new RpcError('INVALID_ARGUMENT', `the body is not valid JSON: ${why}`);
  }
}

function tooLarge(maxBytes: number): RpcError {
  return new RpcError('RESOURCE_EXHAUSTED', `the body is larger than ${maxBytes} bytes`, {
    details: { maxBytes },
  });
}

/** How deep `[` and `{` nest in JSON text, strings skipped; one pass, no parsing. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c)
        i++; // a backslash: skip the escaped character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) inString = true;
    else if (char === 0x5b || char === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (char === 0x5d || char === 0x7d) depth--;
  }
  return deepest;
}
