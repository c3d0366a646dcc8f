import { RpcError } from '../errors.js';
import type { ControlPlane } from '../control/control-plane.js';
import type { PendingCall } from './pending.js';

/**
 * CANCELLED, or DEADLINE_EXCEEDED when the signal came from `AbortSignal.timeout()`; a
 * parent handler's signal aborts with an RpcError (its deadline, its caller's cancel),
 * whose code the nested call takes.
 */
export function cancelled(signal: AbortSignal): RpcError {
  const reason: unknown = signal.reason;
  if (reason instanceof RpcError) {
    return new RpcError(reason.code, reason.message, { cause: reason });
  }
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new RpcError('DEADLINE_EXCEEDED', "the call's signal timed out", { cause: reason });
  }
  return new RpcError('CANCELLED', 'the call was cancelled', { cause: reason });
}

/** Calls `onAbort` once when `signal` aborts, until the call settles (which removes it). */
export function watchAbort(call: PendingCall, signal: AbortSignal, onAbort: () => void): void {
  call.onAbort = onAbort;
  signal.addEventListener('abort', onAbort, { once: true });
}

/**
 * The server may be running the call: tell it to stop (end-to-end cancellation), through
 * the stream's or broadcast's own cancel if it has one, else the control plane.
 */
export function cancelOnServer(call: PendingCall, control: ControlPlane, replyTo: string): void {
  // The library's own describes (D36) run nothing to stop.
  if (!call.published || call.multi?.internal === true) return;
  if (call.multi?.onCancel) call.multi.onCancel(call.id, replyTo);
  else control.cancel(call.queue, call.id, undefined, replyTo);
}
