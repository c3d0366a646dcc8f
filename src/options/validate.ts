/** The checks every option resolver shares: each failure is an INVALID_ARGUMENT naming the option. */
import { RpcError } from '../errors.js';

/** The largest delay a Node timer accepts (about 24.8 days). */
export const MAX_TIMEOUT_MS = 2_147_483_647;

export function functions<T>(name: string, value: readonly T[] | undefined): readonly T[] {
  if (value === undefined) return [];
  const list: unknown = value;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'function')) {
    invalid(`${name} must be an array of functions`);
  }
  return value.slice();
}

export function integer(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(`${name} must be an integer from ${min} to ${max}; got ${String(value)}`);
  }
  return value;
}

export function boolean(name: string, value: boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') invalid(`${name} must be true or false; got ${String(value)}`);
  return value;
}

export function invalid(message: string): never {
  throw new RpcError('INVALID_ARGUMENT', message);
}
