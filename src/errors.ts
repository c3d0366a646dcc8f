/**
 * The closed set of error codes. They are the canonical gRPC status names, so they mean
 * what they mean everywhere else; there are no user-defined codes. docs/errors.md says
 * when rabbit-rpc itself uses each one.
 */
export const ERROR_CODES = [
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

/** One of {@link ERROR_CODES}. */
export type RpcErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

/** Marks RpcErrors across copies of the library: Symbol.for gives every copy the same key. */
const BRAND = Symbol.for('rabbit-rpc.RpcError');

/** True when `value` is one of the closed set of {@link ERROR_CODES}. */
export function isRpcErrorCode(value: unknown): value is RpcErrorCode {
  return typeof value === 'string' && CODE_SET.has(value);
}

/** Options of {@link RpcError}. */
export interface RpcErrorOptions {
  /** Structured data that travels to the caller with the error (JSON). */
  details?: unknown;
  /** The local error behind this one. Never sent over the wire. */
  cause?: unknown;
}

/**
 * The one error class of rabbit-rpc. Every failure a caller sees, local or remote, is an
 * `RpcError` whose `code` is one of {@link ERROR_CODES}. Handlers throw it to choose the
 * code their caller receives.
 *
 * @example
 * ```ts
 * throw new RpcError('NOT_FOUND', `no user ${id}`, { details: { id } });
 * ```
 */
export class RpcError extends Error {
  /**
   * `instanceof RpcError` holds for an RpcError from any copy of rabbit-rpc in the process
   * (the ESM and the CommonJS build, a bundled CLI, two versions): the brand is shared.
   */
  static override [Symbol.hasInstance](value: unknown): value is RpcError {
    return typeof value === 'object' && value !== null && BRAND in value;
  }

  readonly [BRAND] = true;
  override readonly name = 'RpcError';
  readonly code: RpcErrorCode;
  /** Structured data sent with the error, if any. */
  readonly details: unknown;

  constructor(code: RpcErrorCode, message: string, options: RpcErrorOptions = {}) {
    super(message, 'cause' in options ? { cause: options.cause } : undefined);
    if (!isRpcErrorCode(code)) {
      throw new TypeError(
        `RpcError code must be one of ${ERROR_CODES.join(', ')}; got ${String(code)}`,
      );
    }
    this.code = code;
    this.details = options.details;
  }

  /**
   * Wraps anything thrown into an `RpcError`: an `RpcError` is returned as is, anything
   * else gets `code` (UNKNOWN by default) and keeps the original as `cause`.
   */
  static from(reason: unknown, code: RpcErrorCode = 'UNKNOWN'): RpcError {
    if (reason instanceof RpcError) return reason;
    return new RpcError(code, textOf(reason), { cause: reason });
  }
}

/**
 * The text of anything thrown or received, without ever throwing itself: `String()` throws
 * on an object whose `toString` and `valueOf` are not functions (a peer's JSON can be
 * `{"toString": 1}`) and overflows the stack on a deeply nested array.
 */
export function textOf(reason: unknown): string {
  if (reason instanceof Error && typeof reason.message === 'string') return reason.message;
  try {
    return String(reason);
  } catch {
    return Object.prototype.toString.call(reason);
  }
}
