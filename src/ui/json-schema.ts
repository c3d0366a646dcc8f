/**
 * A small JSON Schema checker for `rabbit-rpc call --method` and the page of `rabbit-rpc ui`
 * (which runs it in the browser as you type: it imports nothing). The subset zod, valibot and
 * arktype emit for plain data (type, enum, const, properties, required,
 * additionalProperties, items, prefixItems, min/max lengths, items and values, pattern,
 * multipleOf, anyOf, oneOf, allOf, not, local $ref). Keywords outside it are ignored: the
 * check only catches mistakes early and says where; the server still validates with the
 * real schema (decisions.md D33). Bounded: nesting, $ref hops and the issues reported.
 */

/** One mismatch: where in the value (a JSON Pointer), and what is wrong. */
export interface SchemaIssue {
  readonly path: string;
  readonly message: string;
}

const MAX_ISSUES = 20;
const MAX_DEPTH = 64;
/** Schema nodes visited per check: anyOf inside anyOf could otherwise take exponential time. */
const MAX_STEPS = 100_000;
/** Steps of the check running now (checks are synchronous, so one counter is enough). */
let steps = 0;

type Schema = Readonly<Record<string, unknown>> | boolean;

/** The ways `value` does not match `schema`: empty when it matches. */
export function checkJsonSchema(schema: unknown, value: unknown): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  const root = isSchema(schema) ? schema : true;
  steps = 0;
  check(root, root, value, '', issues, 0);
  return issues.slice(0, MAX_ISSUES);
}

function check(
  root: Schema,
  schema: Schema,
  value: unknown,
  path: string,
  issues: SchemaIssue[],
  depth: number,
): void {
  if (issues.length >= MAX_ISSUES || ++steps > MAX_STEPS) return;
  if (schema === true) return;
  if (schema === false) return void issues.push({ path, message: 'no value is allowed here' });
  if (depth > MAX_DEPTH) return; // deeper than any schema library nests: not checked
  const add = (message: string, at = path): void => void issues.push({ path: at || '/', message });
  const ref = schema['$ref'];
  if (typeof ref === 'string') {
    const target = resolve(root, ref);
    if (target !== undefined) check(root, target, value, path, issues, depth + 1);
  }
  const type = schema['type'];
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    if (!types.some((name) => hasType(value, name))) {
      return add(`expected ${types.join(' or ')}, got ${typeOf(value)}`);
    }
  }
  if (Array.isArray(schema['enum']) && !schema['enum'].some((item) => same(item, value))) {
    add(`expected one of ${schema['enum'].map((item) => JSON.stringify(item)).join(', ')}`);
  }
  if ('const' in schema && !same(schema['const'], value)) {
    add(`expected ${JSON.stringify(schema['const'])}`);
  }
  if (typeof value === 'string') checkString(schema, value, add);
  if (typeof value === 'number') checkNumber(schema, value, add);
  if (Array.isArray(value)) checkArray(root, schema, value, path, issues, depth, add);
  else if (typeof value === 'object' && value !== null) {
    checkObject(root, schema, value as Record<string, unknown>, path, issues, depth, add);
  }
  checkCombinators(root, schema, value, path, issues, depth, add);
}

function checkString(schema: Schema & object, value: string, add: (m: string) => void): void {
  // JSON Schema counts code points: a surrogate pair is one character.
  const length = value.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '_').length;
  const { minLength, maxLength, pattern } = schema;
  if (typeof minLength === 'number' && length < minLength) add(`shorter than ${minLength}`);
  if (typeof maxLength === 'number' && length > maxLength) add(`longer than ${maxLength}`);
  if (typeof pattern === 'string') {
    try {
      if (!new RegExp(pattern, 'u').test(value)) add(`does not match /${pattern}/`);
    } catch {
      // A pattern JavaScript cannot compile: left to the server.
    }
  }
}

function checkNumber(schema: Schema & object, value: number, add: (m: string) => void): void {
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf } = schema;
  if (typeof minimum === 'number' && value < minimum) add(`less than ${minimum}`);
  if (typeof maximum === 'number' && value > maximum) add(`greater than ${maximum}`);
  if (typeof exclusiveMinimum === 'number' && value <= exclusiveMinimum) {
    add(`not greater than ${exclusiveMinimum}`);
  }
  if (typeof exclusiveMaximum === 'number' && value >= exclusiveMaximum) {
    add(`not less than ${exclusiveMaximum}`);
  }
  if (typeof multipleOf === 'number' && multipleOf > 0) {
    const quotient = value / multipleOf;
    if (Math.abs(quotient - Math.round(quotient)) > 1e-9) add(`not a multiple of ${multipleOf}`);
  }
}

function checkArray(
  root: Schema,
  schema: Schema & object,
  value: readonly unknown[],
  path: string,
  issues: SchemaIssue[],
  depth: number,
  add: (m: string) => void,
): void {
  const { minItems, maxItems, items, prefixItems } = schema;
  if (typeof minItems === 'number' && value.length < minItems) add(`fewer than ${minItems} items`);
  if (typeof maxItems === 'number' && value.length > maxItems) add(`more than ${maxItems} items`);
  // Tuples: draft 2020-12's prefixItems, or draft-07's array form of items.
  const tuple = Array.isArray(prefixItems) ? prefixItems : Array.isArray(items) ? items : [];
  const rest = Array.isArray(items) ? schema['additionalItems'] : items;
  value.forEach((item, index) => {
    const itemSchema: unknown = index < tuple.length ? tuple[index] : rest;
    if (isSchema(itemSchema)) check(root, itemSchema, item, `${path}/${index}`, issues, depth + 1);
  });
}

function checkObject(
  root: Schema,
  schema: Schema & object,
  value: Readonly<Record<string, unknown>>,
  path: string,
  issues: SchemaIssue[],
  depth: number,
  add: (m: string, at?: string) => void,
): void {
  const properties = isRecord(schema['properties']) ? schema['properties'] : {};
  if (Array.isArray(schema['required'])) {
    for (const name of schema['required']) {
      if (typeof name === 'string' && !Object.hasOwn(value, name)) {
        add(`missing required property "${name}"`);
      }
    }
  }
  const additional = schema['additionalProperties'];
  for (const [name, item] of Object.entries(value)) {
    const at = `${path}/${pointerSegment(name)}`;
    const propertySchema = Object.hasOwn(properties, name) ? properties[name] : additional;
    if (propertySchema === false && !Object.hasOwn(properties, name)) {
      add(`unexpected property "${name}"`, at);
    } else if (isSchema(propertySchema)) {
      check(root, propertySchema, item, at, issues, depth + 1);
    }
  }
}

function checkCombinators(
  root: Schema,
  schema: Schema & object,
  value: unknown,
  path: string,
  issues: SchemaIssue[],
  depth: number,
  add: (m: string) => void,
): void {
  const matches = (candidate: unknown): boolean => {
    if (!isSchema(candidate)) return true;
    const found: SchemaIssue[] = [];
    check(root, candidate, value, path, found, depth + 1);
    return found.length === 0;
  };
  const { allOf, anyOf, oneOf, not } = schema;
  if (Array.isArray(allOf)) {
    for (const part of allOf) if (isSchema(part)) check(root, part, value, path, issues, depth + 1);
  }
  if (Array.isArray(anyOf) && !anyOf.some(matches)) {
    add(`matches none of the ${anyOf.length} alternatives`);
  }
  if (Array.isArray(oneOf) && oneOf.filter(matches).length !== 1) {
    add(`must match exactly one of the ${oneOf.length} alternatives`);
  }
  if (not !== undefined && isSchema(not) && matches(not)) add('matches a schema it must not');
}

/** A local reference (`#/$defs/x`, `#/definitions/x`, `#`); undefined for anything else. */
function resolve(root: Schema, ref: string): Schema | undefined {
  if (!ref.startsWith('#')) return undefined;
  let at: unknown = root;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isRecord(at) || !Object.hasOwn(at, key)) return undefined;
    at = at[key];
  }
  return isSchema(at) ? at : undefined;
}

function hasType(value: unknown, name: unknown): boolean {
  switch (name) {
    case 'null':
      return value === null;
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    default:
      return true; // a type this checker does not know: left to the server
  }
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isSchema(value: unknown): value is Schema {
  return typeof value === 'boolean' || isRecord(value);
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pointerSegment(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1');
}
