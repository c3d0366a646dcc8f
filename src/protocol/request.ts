import { RpcError } from '../errors.js';
import type { AmqpField, AmqpProperties } from '../transport/types.js';
import { DEADLINE_HEADER } from './names.js';

/**
 * The request's AMQP properties, the write half of a request (docs/protocol.md, "Request"):
 * `expiration` (the broker drops the request when the caller gives up), `rpc-deadline`, the
 * caller's headers merged with those of a stream or broadcast, the method in `type`, and
 * `user_id` (checked by the broker against the login: servers can trust it).
 */
export function requestProperties(
  contentType: string,
  timeoutMs: number,
  deadline: number,
  headers: Readonly<Record<string, AmqpField>> | undefined,
  extraHeaders: Readonly<Record<string, AmqpField>> | undefined,
  method: string | undefined,
  userId: string | undefined,
): AmqpProperties {
  const properties: AmqpProperties = {
    contentType,
    expiration: String(timeoutMs),
    headers:
      headers || extraHeaders
        ? { ...headers, ...extraHeaders, [DEADLINE_HEADER]: deadline }
        : { [DEADLINE_HEADER]: deadline },
  };
  // The method name of a service call travels in the AMQP `type` property.
  if (method !== undefined) properties.type = method;
  if (userId !== undefined) properties.userId = userId;
  return properties;
}

/**
 * The properties of a batch of requests: it lives as long as its longest call
 * (`expirationMs`); each entry carries its own deadline.
 */
export function batchRequestProperties(
  contentType: string,
  correlationId: string,
  replyTo: string,
  expirationMs: number,
  userId: string | undefined,
): AmqpProperties {
  const properties: AmqpProperties = {
    contentType,
    correlationId,
    replyTo,
    expiration: String(expirationMs),
    headers: { [DEADLINE_HEADER]: Date.now() + expirationMs },
  };
  if (userId !== undefined) properties.userId = userId;
  return properties;
}

/** Headers travel in one AMQP frame with the other properties: keep them well below it. */
export const MAX_HEADERS_BYTES = 8 * 1024;

/** Refuses headers too large for the frame they travel in (INVALID_ARGUMENT). */
export function checkHeaders(headers: Readonly<Record<string, unknown>>): void {
  let size = 0;
  for (const [key, value] of Object.entries(headers)) size += key.length + String(value).length + 8;
  if (size > MAX_HEADERS_BYTES) {
    throw new RpcError(
      'INVALID_ARGUMENT',
      `headers take about ${size} bytes; the limit is ${MAX_HEADERS_BYTES}`,
    );
  }
}
