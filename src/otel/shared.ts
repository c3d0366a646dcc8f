import type { Attributes } from '@opentelemetry/api';
import { isRpcErrorCode, type RpcErrorCode } from '../errors.js';
import type { CallInterceptor, ServeInterceptor } from '../interceptors.js';

/** A client and a server interceptor: pass `call` to `callInterceptors`, `serve` to `serveInterceptors`. */
export interface RpcInterceptors {
  /** For `connect({ callInterceptors: [...] })`. */
  readonly call: CallInterceptor;
  /** For `connect({ serveInterceptors: [...] })` or `serve(queue, handler, { interceptors: [...] })`. */
  readonly serve: ServeInterceptor;
}

/** The instrumentation scope name of tracers and meters. */
export const SCOPE_NAME = 'rabbit-rpc';

/** `rpc.system.name`: not one of the well-known values, so a custom one, as the conventions allow. */
export const RPC_SYSTEM = 'rabbit-rpc';

/** `queue/method` for a service call, `queue` for a plain call: the span name and `rpc.method`. */
export function rpcMethod(queue: string, method: string | undefined): string {
  return method === undefined ? queue : `${queue}/${method}`;
}

/**
 * The code a failure reaches the other side with: an RpcError's own code (read by shape, so
 * that it works across bundles), UNKNOWN for anything else, as the library itself maps it.
 */
export function errorCode(error: unknown): RpcErrorCode {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    if (isRpcErrorCode(code)) return code;
  }
  return 'UNKNOWN';
}

/** The attributes every call instrument and span carries. */
export function baseAttributes(queue: string, method: string | undefined): Attributes {
  return { 'rpc.system.name': RPC_SYSTEM, 'rpc.method': rpcMethod(queue, method) };
}
