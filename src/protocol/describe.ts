/**
 * The describe message (docs/protocol.md, "Describe and discovery"): what a rabbit-rpc server
 * says about itself when asked through the control plane. Both halves live here: the types
 * of the description, and `readInstanceDescription`, which checks a description that came
 * from a peer. A peer's reply is untrusted input: it is bounded and shape-checked before
 * anything reads it.
 */

/** `rpc-control` value of a describe request. */
export const DESCRIBE_CONTROL = 'describe';
/**
 * Routing key on the control exchange that every serving connection binds: a describe
 * request published with it reaches every rabbit-rpc server on the vhost.
 */
export const DESCRIBE_ALL_KEY = 'rabbit-rpc.describe';
/** Version of the describe message's body; a reader skips a description of a newer major. */
export const DESCRIBE_VERSION = 1;
/** The wire protocol version this library speaks (docs/protocol.md). */
export const PROTOCOL_VERSION = 1;
/** This library's name and version, as servers report them. Checked against package.json in the tests. */
export const LIBRARY = { name: 'rabbit-rpc', version: '0.1.0' } as const;

/** The largest describe reply body a caller reads; a larger one is dropped unread. */
export const MAX_DESCRIPTION_BYTES = 1024 * 1024;
/** How deep a JSON Schema in a description may nest before the description is dropped. */
export const MAX_SCHEMA_DEPTH = 64;
/** How many methods (and declared errors per method) a description may list. */
export const MAX_METHODS = 1_000;
/** How many instances one discovery collects at most. */
export const MAX_INSTANCES = 10_000;
const MAX_NAME_LENGTH = 255;
const MAX_ERROR_CODES = 17;

/** A JSON Schema (draft-07 as the schema libraries emit it). */
export type JsonSchema = { readonly [key: string]: unknown } | boolean;

/** One method of a service, as its server describes it. */
export interface MethodDescription {
  readonly name: string;
  /** True for a method that streams its reply (each item matches `output`). */
  readonly stream: boolean;
  /** True when the contract marks the method idempotent (callers may retry it). */
  readonly idempotent: boolean;
  /** The JSON Schema of the input; absent for `typeOnly` shapes and schemas without one. */
  readonly input?: JsonSchema;
  /** The JSON Schema of the output (of each item, for a streaming method). */
  readonly output?: JsonSchema;
  /** Declared error codes, each with the JSON Schema of its details when there is one. */
  readonly errors: ReadonlyArray<{ readonly code: string; readonly details?: JsonSchema }>;
}

/** What a contract says about itself: its name and methods. */
export interface ContractDescription {
  /** The contract's name (`defineService(name, ...)`). */
  readonly service: string;
  readonly queue: string;
  readonly methods: readonly MethodDescription[];
}

/** Counters of one server instance since it started. */
export interface InstanceCounters {
  /** Requests answered (success or error reply). */
  readonly calls: number;
  /** Error replies, by RpcError code. */
  readonly errors: Readonly<Record<string, number>>;
  /** Requests dropped unstarted because their deadline had passed. */
  readonly expired: number;
}

/** One serving instance (one `RpcServer`) as it describes itself: the describe reply's body. */
export interface InstanceDescription {
  /** The body's format version ({@link DESCRIBE_VERSION}). */
  readonly describe: number;
  readonly queue: string;
  /** The contract's name; absent for a plain `serve(queue, handler)`. */
  readonly service?: string;
  /** The contract's methods; empty for a plain server. */
  readonly methods: readonly MethodDescription[];
  readonly library: { readonly name: string; readonly version: string };
  readonly protocol: number;
  /** The instance's control queue: unique while it runs (as in broadcast replies). */
  readonly instance: string;
  /** When the server started consuming, ISO 8601. */
  readonly startedAt: string;
  /** Handlers running now. */
  readonly inFlight: number;
  readonly prefetch: number;
  readonly counters: InstanceCounters;
  /**
   * Present when the instance reads batches (docs/protocol.md, "Batches"): the most calls
   * and bytes one batch message may carry. Absent from servers that take none and from
   * older ones, which callers then never batch to.
   */
  readonly batch?: BatchAdvertisement;
}

/** What a server that reads batches says about them in its description. */
export interface BatchAdvertisement {
  readonly maxCalls: number;
  readonly maxBytes: number;
}

/**
 * The description a peer sent, checked: the right shape, names and counts within bounds,
 * schemas no deeper than {@link MAX_SCHEMA_DEPTH}. Undefined when it is not one (then the
 * reply is dropped, as from a server that is not rabbit-rpc).
 */
export function readInstanceDescription(value: unknown): InstanceDescription | undefined {
  if (!isRecord(value)) return undefined;
  const { describe, queue, service, methods, library, protocol, instance, startedAt } = value;
  if (typeof describe !== 'number' || Math.trunc(describe) !== DESCRIBE_VERSION) return undefined;
  if (!isName(queue) || !isName(instance)) return undefined;
  if (service !== undefined && !isName(service)) return undefined;
  if (!Array.isArray(methods) || methods.length > MAX_METHODS) return undefined;
  const readMethods: MethodDescription[] = [];
  for (const method of methods) {
    const read = readMethod(method);
    if (read === undefined) return undefined;
    readMethods.push(read);
  }
  if (!isRecord(library) || !isName(library['name']) || !isName(library['version'])) {
    return undefined;
  }
  if (!isCount(protocol) || typeof startedAt !== 'string' || startedAt.length > 64) {
    return undefined;
  }
  const inFlight = value['inFlight'];
  const prefetch = value['prefetch'];
  if (!isCount(inFlight) || !isCount(prefetch)) return undefined;
  const counters = readCounters(value['counters']);
  if (counters === undefined) return undefined;
  // Optional: older peers send none; a malformed one is read as none (never batched to).
  const batch = readBatch(value['batch']);
  const description: InstanceDescription = {
    describe,
    queue,
    methods: readMethods,
    library: { name: library['name'], version: library['version'] },
    protocol,
    instance,
    startedAt,
    inFlight,
    prefetch,
    counters,
    ...(batch === undefined ? {} : { batch }),
  };
  return service === undefined ? description : { ...description, service };
}

function readBatch(value: unknown): BatchAdvertisement | undefined {
  if (!isRecord(value)) return undefined;
  const { maxCalls, maxBytes } = value;
  if (!isCount(maxCalls) || !isCount(maxBytes) || maxCalls < 1 || maxBytes < 1) return undefined;
  return { maxCalls, maxBytes };
}

function readMethod(value: unknown): MethodDescription | undefined {
  if (!isRecord(value) || !isName(value['name'])) return undefined;
  const { stream, idempotent, input, output, errors } = value;
  if (typeof stream !== 'boolean' || typeof idempotent !== 'boolean') return undefined;
  if (input !== undefined && !isSchema(input)) return undefined;
  if (output !== undefined && !isSchema(output)) return undefined;
  if (!Array.isArray(errors) || errors.length > MAX_ERROR_CODES) return undefined;
  const readErrors: Array<{ code: string; details?: JsonSchema }> = [];
  for (const error of errors) {
    if (!isRecord(error) || !isName(error['code'])) return undefined;
    const details = error['details'];
    if (details !== undefined && !isSchema(details)) return undefined;
    readErrors.push(
      details === undefined ? { code: error['code'] } : { code: error['code'], details },
    );
  }
  const method: { -readonly [K in keyof MethodDescription]: MethodDescription[K] } = {
    name: value['name'],
    stream,
    idempotent,
    errors: readErrors,
  };
  if (input !== undefined) method.input = input;
  if (output !== undefined) method.output = output;
  return method;
}

function readCounters(value: unknown): InstanceCounters | undefined {
  if (!isRecord(value)) return undefined;
  const { calls, errors, expired } = value;
  if (!isCount(calls) || !isCount(expired) || !isRecord(errors)) return undefined;
  const entries = Object.entries(errors);
  if (entries.length > MAX_ERROR_CODES) return undefined;
  const read: Record<string, number> = {};
  for (const [code, count] of entries) {
    if (!isName(code) || !isCount(count)) return undefined;
    read[code] = count;
  }
  return { calls, errors: read, expired };
}

/** An object or boolean no deeper than {@link MAX_SCHEMA_DEPTH}: what JSON Schema may be. */
function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'boolean' || (isRecord(value) && depthWithin(value, MAX_SCHEMA_DEPTH));
}

/** Iterative, so a hostile nesting cannot overflow the stack. */
function depthWithin(root: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [value, depth] = next;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > limit) return false;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return true;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_NAME_LENGTH;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * A describe answer's body, read: undefined when it is too large, not JSON or not a
 * description (answers are untrusted: any peer bound to the control exchange can send one).
 */
export function readDescribeReply(body: Uint8Array | null): InstanceDescription | undefined {
  if (body === null || body.length > MAX_DESCRIPTION_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
  return readInstanceDescription(parsed);
}
