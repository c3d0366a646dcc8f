/**
 * The request deadline (docs/protocol.md, "Deadlines"): `rpc-deadline`, milliseconds since
 * the epoch, beside the AMQP `expiration` that lets the broker drop a request nobody read
 * in time. The caller writes both; the server reads the header.
 */
import type { AmqpField } from '../transport/types.js';
import { DEADLINE_HEADER } from './names.js';

/** The deadline a request's headers carry, if they carry a usable one. */
export function readDeadline(
  headers: Readonly<Record<string, AmqpField>> | undefined,
): number | undefined {
  const value = headers?.[DEADLINE_HEADER];
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}
