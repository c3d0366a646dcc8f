/**
 * Batches: several calls in one AMQP message, and their replies in one (docs/protocol.md,
 * "Batches"). An opt-in of the caller (`ConnectOptions.batch`) for traffic between
 * rabbit-rpc peers: the broker's per-message work is paid once per batch instead of once per
 * call. This module holds the body format; the caller and the server do the rest.
 *
 * Request body: a JSON array of entries `[correlationId, deadline, method, headers, payload]`;
 * reply body: a JSON array of `[correlationId, status, message, contentType, body]`. Both are
 * written by joining the JSON text the calls and replies already have, so nothing is parsed
 * and serialised twice on the way out.
 */
import { Buffer } from 'node:buffer';
import {
  CONTENT_TYPE_BINARY,
  CONTENT_TYPE_JSON,
  CONTENT_TYPE_TEXT,
  DEADLINE_HEADER,
} from './names.js';
import { RpcError, isRpcErrorCode, type RpcErrorCode } from '../errors.js';
import { utf8Text } from './codec.js';
import type { AmqpField, AmqpMessageLike, AmqpProperties } from '../transport/types.js';

/** Content type of batch requests and batch replies. */
export const BATCH_CONTENT_TYPE = 'application/vnd.rabbit-rpc.batch+json';

/** One call of a batch request, as the server reads it. */
export interface BatchEntry {
  readonly id: string;
  readonly deadline: number | undefined;
  readonly method: string | undefined;
  readonly headers: Record<string, AmqpField> | undefined;
  readonly payload: unknown;
}

/** The JSON text of one request entry; `payload` is the call's JSON body as it is. */
export function requestEntry(
  id: string,
  deadline: number,
  method: string | undefined,
  headers: Readonly<Record<string, unknown>> | undefined,
  payload: Uint8Array,
): string {
  const head = JSON.stringify([
    id,
    deadline,
    method ?? null,
    headers && Object.keys(headers).length > 0 ? headers : null,
  ]);
  // `[a,b,c,d]` + payload → `[a,b,c,d,payload]`
  return `${head.slice(0, -1)},${utf8Text(payload)}]`;
}

/** The body of a batch: its entries' JSON text in an array. */
export function batchBody(entries: readonly string[]): Uint8Array {
  return Buffer.from(`[${entries.join(',')}]`, 'utf8');
}

/** Reads a batch request; throws INVALID_ARGUMENT when it is not one. */
export function readRequestBatch(body: Uint8Array | null): BatchEntry[] {
  return parseArray(body, 'INVALID_ARGUMENT').map((raw): BatchEntry => {
    if (!Array.isArray(raw) || raw.length !== 5 || typeof raw[0] !== 'string') {
      throw new RpcError(
        'INVALID_ARGUMENT',
        'a batch entry is not [id, deadline, method, headers, payload]',
      );
    }
    const [id, deadline, method, headers, payload] = raw as unknown[];
    return {
      id: id as string,
      deadline: typeof deadline === 'number' ? deadline : undefined,
      method: typeof method === 'string' ? method : undefined,
      headers:
        typeof headers === 'object' && headers !== null && !Array.isArray(headers)
          ? (headers as Record<string, AmqpField>)
          : undefined,
      payload,
    };
  });
}

/**
 * The JSON text of one reply entry. A JSON body goes in as it is; other content types as
 * base64 (binary) or a string (text), named in the entry.
 */
export function replyEntry(
  id: string,
  status: string | undefined,
  message: string | undefined,
  contentType: string,
  body: Uint8Array,
): string {
  const head = JSON.stringify([id, status ?? null, message ?? null]).slice(0, -1);
  if (contentType === CONTENT_TYPE_JSON) {
    // An empty JSON body (an error without details) is null.
    return `${head},null,${body.length === 0 ? 'null' : utf8Text(body)}]`;
  }
  const text =
    contentType === CONTENT_TYPE_TEXT
      ? utf8Text(body)
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  return `${head},${JSON.stringify(contentType)},${JSON.stringify(text)}]`;
}

/** Reads a batch reply: each call's outcome (an RpcError rejects it), by correlation id. */
export function readReplyBatch(body: Uint8Array | null): Array<[string, unknown]> {
  return parseArray(body, 'INTERNAL').map((raw): [string, unknown] => {
    if (!Array.isArray(raw) || raw.length !== 5 || typeof raw[0] !== 'string') {
      throw new RpcError(
        'INTERNAL',
        'a batch reply entry is not [id, status, message, type, body]',
      );
    }
    const [id, status, message, contentType, value] = raw as [string, ...unknown[]];
    if (typeof status === 'string') {
      const code = isRpcErrorCode(status) ? status : 'UNKNOWN';
      const text = typeof message === 'string' ? message : `remote error ${code}`;
      return [id, new RpcError(code, text, { details: value ?? undefined })];
    }
    if (contentType === null) return [id, value];
    if (contentType === CONTENT_TYPE_TEXT && typeof value === 'string') return [id, value];
    if (contentType === CONTENT_TYPE_BINARY && typeof value === 'string') {
      return [id, Buffer.from(value, 'base64')];
    }
    return [
      id,
      new RpcError('INTERNAL', `a batch reply of content type ${JSON.stringify(contentType)}`),
    ];
  });
}

function parseArray(body: Uint8Array | null, failCode: RpcErrorCode): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body ? utf8Text(body) : '');
  } catch (error) {
    throw new RpcError(failCode, 'a batch body is not JSON', { cause: error });
  }
  if (!Array.isArray(parsed)) throw new RpcError(failCode, 'a batch body is not an array');
  return parsed;
}

/** The request one batch entry stands for: the batch's properties with the entry's own. */
export function entryMessage(batch: AmqpMessageLike, entry: BatchEntry): AmqpMessageLike {
  const headers: Record<string, AmqpField> = { ...entry.headers };
  if (entry.deadline !== undefined) headers[DEADLINE_HEADER] = entry.deadline;
  const properties: AmqpProperties = {
    ...batch.properties,
    contentType: CONTENT_TYPE_JSON,
    correlationId: entry.id,
    headers,
  };
  if (entry.method === undefined) delete properties.type;
  else properties.type = entry.method;
  return {
    properties,
    body: null,
    deliveryTag: batch.deliveryTag,
    redelivered: batch.redelivered,
    routingKey: batch.routingKey,
  };
}
