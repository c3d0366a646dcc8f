/** The fields of an API request body, checked: names, deadlines, integers in range. */
import { RpcError } from '../index.js';
import type { UiLimits } from './api.js';
import { UI_DEFAULT_TIMEOUT_MS } from './limits.js';

const MAX_NAME_BYTES = 255;

export interface CallArgs {
  readonly queue: string;
  readonly method: string | undefined;
  readonly request: unknown;
  readonly timeoutMs: number;
}

/** The queue, method, request and deadline of a body; unknown fields are refused. */
export function callArgs(
  body: Record<string, unknown>,
  allowed: readonly string[],
  limits: UiLimits,
): CallArgs {
  for (const field of Object.keys(body)) {
    if (!allowed.includes(field)) {
      throw new RpcError(
        'INVALID_ARGUMENT',
        `unknown field "${field}"; the fields are ${allowed.join(', ')}`,
      );
    }
  }
  const queue = name(body['queue'], 'queue');
  if (queue === undefined) throw new RpcError('INVALID_ARGUMENT', 'queue is required');
  const method = name(body['method'], 'method');
  const timeoutMs =
    optionalInteger(body, 'timeoutMs', 1, limits.maxTimeoutMs) ?? UI_DEFAULT_TIMEOUT_MS;
  return { queue, method, request: body['request'] ?? null, timeoutMs };
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

export function optionalInteger(
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
