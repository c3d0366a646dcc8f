import { isSchema } from './define-service.js';
import type { StandardSchemaV1Issue, StandardSchemaV1Result } from './standard-schema.js';
import type { Shape, ValidationIssue } from './types.js';

/** The outcome of {@link validate}. */
export type Validated = { ok: true; value: unknown } | { ok: false; issues: ValidationIssue[] };

/**
 * Validates `value` against a shape: a Standard Schema runs (sync or async); a types-only
 * shape passes the value through unchecked.
 */
export function validate(shape: Shape, value: unknown): Validated | Promise<Validated> {
  if (!isSchema(shape)) return { ok: true, value };
  const result = shape['~standard'].validate(value);
  return isPromiseLike(result) ? Promise.resolve(result).then(toValidated) : toValidated(result);
}

/**
 * Validates synchronously; `undefined` when the schema answers with a promise (an async
 * schema), so the caller can decide what an unknown outcome means.
 */
export function validateSync(shape: Shape, value: unknown): Validated | undefined {
  const outcome = validate(shape, value);
  if (isPromiseLike(outcome)) {
    outcome.catch(() => undefined); // the outcome is not wanted; never leave it unhandled
    return undefined;
  }
  return outcome;
}

function toValidated(result: StandardSchemaV1Result<unknown>): Validated {
  if (result.issues === undefined) return { ok: true, value: result.value };
  return { ok: false, issues: result.issues.map(toWireIssue) };
}

/** An issue in a JSON-safe form: its message and a path of string or number keys. */
export function toWireIssue(issue: StandardSchemaV1Issue): ValidationIssue {
  const path: (string | number)[] = [];
  for (const segment of issue.path ?? []) {
    const key = typeof segment === 'object' ? segment.key : segment;
    path.push(typeof key === 'number' ? key : String(key));
  }
  return { message: issue.message, path };
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as Partial<PromiseLike<T>> | null)?.then === 'function';
}
