import { HttpException } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { isRpcErrorCode, RpcError, type RpcErrorCode } from '../index.js';

/** Nest's HTTP statuses, as the closest gRPC code (the table of docs/guides/nestjs.md). */
const HTTP_CODES: ReadonlyMap<number, RpcErrorCode> = new Map([
  [400, 'INVALID_ARGUMENT'],
  [401, 'UNAUTHENTICATED'],
  [403, 'PERMISSION_DENIED'],
  [404, 'NOT_FOUND'],
  [409, 'ALREADY_EXISTS'],
  [429, 'RESOURCE_EXHAUSTED'],
  [503, 'UNAVAILABLE'],
  [504, 'DEADLINE_EXCEEDED'],
]);

/**
 * What Nest's guard layer throws when `canActivate` returns false (`RpcException` with
 * this message); Nest's default RPC filter turns it into `{ status: 'error', message }`.
 */
const FORBIDDEN_MESSAGE = 'Forbidden resource';
/** What Nest's default RPC filter sends for any exception that is not an RpcException. */
export const NEST_UNKNOWN_MESSAGE = 'Internal server error';

/** The rabbit-rpc code for an HTTP status: the table above, else UNKNOWN. */
export function codeForHttpStatus(status: number): RpcErrorCode {
  return HTTP_CODES.get(status) ?? 'UNKNOWN';
}

/**
 * Turns whatever a Nest handler, guard, pipe, interceptor or filter threw into an RpcError:
 *
 * - an RpcError stays as it is;
 * - `RpcException({ code, message, details })` with a code of the closed set keeps it;
 * - Nest's HTTP exceptions map by status (`codeForHttpStatus`); the response body (a
 *   ValidationPipe's list of messages, say) becomes `details` when it is an object;
 * - a guard's refusal becomes PERMISSION_DENIED;
 * - anything else is UNKNOWN with its message.
 */
export function toRpcError(exception: unknown): RpcError {
  if (exception instanceof RpcError) return exception;
  if (exception instanceof HttpException) {
    const response = exception.getResponse();
    return new RpcError(codeForHttpStatus(exception.getStatus()), exception.message, {
      details: typeof response === 'object' ? response : undefined,
      cause: exception,
    });
  }
  if (exception instanceof RpcException) return fromErrorObject(exception.getError(), exception);
  if (exception instanceof Error)
    return new RpcError('UNKNOWN', exception.message, { cause: exception });
  // What reaches the strategy after Nest's filters: an object or a string.
  return fromErrorObject(exception, exception);
}

function fromErrorObject(error: unknown, cause: unknown): RpcError {
  if (typeof error === 'string') {
    const code = error === FORBIDDEN_MESSAGE ? 'PERMISSION_DENIED' : 'UNKNOWN';
    return new RpcError(code, error, { cause });
  }
  if (typeof error !== 'object' || error === null) {
    return new RpcError('UNKNOWN', String(error), { cause });
  }
  const { code, message, details } = error as {
    code?: unknown;
    message?: unknown;
    details?: unknown;
  };
  const text = typeof message === 'string' ? message : 'the handler failed';
  if (isRpcErrorCode(code)) return new RpcError(code, text, { details, cause });
  // `{ status: 'error', message }`: Nest's default RPC filter.
  if (text === FORBIDDEN_MESSAGE) return new RpcError('PERMISSION_DENIED', text, { cause });
  const rest = Object.keys(error).filter((key) => key !== 'status' && key !== 'message');
  return new RpcError('UNKNOWN', text, { details: rest.length > 0 ? error : undefined, cause });
}
