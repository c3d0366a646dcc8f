/**
 * What `JSON.stringify` would change without a word. It turns a Map or a Set into `{}`,
 * NaN and Infinity into `null`, an `undefined` array element into `null`, a class instance
 * into its own fields (its class lost), and drops functions: a payload that would arrive
 * different from what was sent is refused instead (docs/payloads.md). Kept apart from the
 * codec so that the rules are in one place.
 *
 * Allowed as JSON carries them: strings, finite numbers, booleans, null, arrays, plain
 * objects (prototype `Object.prototype` or null; `undefined` properties are left out, as
 * JSON does, which is how optional fields read), and objects with a `toJSON()` method,
 * whose author chose their JSON (a `Date` becomes its ISO string that way).
 */

/** Where in the value the loss is, and what is there. */
export interface JsonLoss {
  /** `.user.tags[2]`; empty for the value itself. */
  readonly path: string;
  /** `a Map (JSON would send {})`, with what to do instead. */
  readonly what: string;
}

/**
 * The first part of `value` that JSON would not carry as it is, or undefined when all of
 * it would. Call it after `JSON.stringify(value)` succeeded: that rules out cycles and
 * BigInts, so this walk ends. Costs one typeof per value; the path is only built on the
 * way back from a loss.
 */
export function findJsonLoss(value: unknown): JsonLoss | undefined {
  const found = lossIn(value, false);
  return found === undefined
    ? undefined
    : { path: found.path.reverse().join(''), what: found.what };
}

interface Found {
  /** Path segments, innermost first (pushed on the way back up). */
  readonly path: string[];
  readonly what: string;
}

function lossIn(value: unknown, inArray: boolean): Found | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value)
        ? undefined
        : found(`${String(value)} (JSON has no such number: it would send null)`);
    case 'object':
      return value === null ? undefined : objectLoss(value);
    case 'undefined':
      // An absent property is fine (JSON leaves it out); in an array it would become null.
      return inArray ? found('undefined (JSON would send null): use null') : undefined;
    case 'function':
      return found('a function (JSON would leave it out)');
    case 'symbol':
      return found('a symbol (JSON would leave it out)');
    case 'bigint':
      // JSON.stringify throws on these before we get here; said anyway for completeness.
      return found('a BigInt: send it as a string');
  }
}

function objectLoss(value: object): Found | undefined {
  if (Array.isArray(value)) {
    const items: readonly unknown[] = value;
    for (let i = 0; i < items.length; i++) {
      const inner = lossIn(items[i], true);
      if (inner !== undefined) return within(inner, `[${i}]`);
    }
    return undefined;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === Object.prototype || prototype === null) {
    const record = value as Readonly<Record<string, unknown>>;
    for (const key in record) {
      const inner = lossIn(record[key], false);
      if (inner !== undefined) return within(inner, propertyPath(key));
    }
    return undefined;
  }
  return otherObjectLoss(value);
}

/** Everything that is not an array or a plain object. */
function otherObjectLoss(value: object): Found | undefined {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return found(
      `${article(value.constructor.name)} inside a JSON value: send bytes as the whole ` +
        'request or reply (a Uint8Array), or encode them, e.g. as base64',
    );
  }
  if (value instanceof Date) {
    return Number.isNaN(value.getTime())
      ? found('an invalid Date (JSON would send null)')
      : undefined;
  }
  if ('toJSON' in value && typeof value.toJSON === 'function') return undefined;
  if (value instanceof String || value instanceof Boolean) return undefined;
  if (value instanceof Number) return lossIn(value.valueOf(), false);
  if (value instanceof Map)
    return found('a Map (JSON would send {}): send Object.fromEntries(map) or [...map]');
  if (value instanceof Set) return found('a Set (JSON would send {}): send [...set]');
  if (value instanceof Error) {
    return found(
      'an Error (JSON would send {}): throw it from the handler for an error reply, or send { message }',
    );
  }
  const name = className(value);
  return found(
    `${name === undefined ? 'an object with a prototype' : `an instance of ${name}`} (JSON would ` +
      'send its own fields only and lose its class): send a plain object, e.g. { ...value }, ' +
      'or give the class a toJSON() method',
  );
}

function className(value: object): string | undefined {
  const constructor: unknown = (value as { constructor?: unknown }).constructor;
  if (typeof constructor !== 'function') return undefined;
  return constructor.name === '' ? undefined : constructor.name;
}

function article(name: string): string {
  return /^[AEIOU]/.test(name) ? `an ${name}` : `a ${name}`;
}

function found(what: string): Found {
  return { path: [], what };
}

function within(inner: Found, segment: string): Found {
  inner.path.push(segment);
  return inner;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function propertyPath(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
