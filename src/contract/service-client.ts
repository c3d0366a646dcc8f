import { RpcError } from '../errors.js';
import { checkOptionNames, optionNames } from '../option-names.js';
import { checkQueueName, type CallOptions, type StreamOptions } from '../options/call.js';
import { isSchema, isServiceDefinition } from './define-service.js';
import { validationError } from './service-server.js';
import {
  CheckedStream,
  type ItemStream,
  type StreamChecks,
  type StreamMethod,
} from './service-stream.js';
import type {
  AnyService,
  MethodName,
  MethodSpec,
  ServiceClient,
  ServiceError,
  ServiceErrorCode,
  StreamMethodName,
} from './types.js';
import { validate, validateSync } from './validate.js';

/** Options of `rpc.client(service, options)`. */
export interface ServiceClientOptions {
  /** Call this queue instead of the contract's. */
  queue?: string;
  /**
   * Validate each input against the method's input schema before publishing; a bad input
   * rejects with INVALID_ARGUMENT (`details.issues`) and nothing is sent. The original
   * value is sent, not the schema's transformed one. Needs the contract value.
   * @default false
   */
  validateInput?: boolean;
  /**
   * Validate each reply against the method's output schema; a mismatch rejects with
   * INTERNAL (`details.issues`). The call resolves with the schema's output value.
   * Needs the contract value.
   * @default false
   */
  validateOutput?: boolean;
}

/**
 * How a client made from a type-only import names its service: the name when the contract
 * uses the default queue (`rpc.<name>`), else `{ name, queue }`. Both are checked against
 * the contract type.
 */
export type ServiceRef<S extends AnyService> = S['queue'] extends `rpc.${S['name']}`
  ? S['name'] | { readonly name: S['name']; readonly queue?: S['queue'] }
  : { readonly name: S['name']; readonly queue: S['queue'] };

/**
 * Options of a client made from a type-only import. Without the contract value, the client
 * cannot tell a streaming method from a unary one at run time, so a contract with
 * streaming methods must name them all: `{ streams: { tail: true } }` (checked against the
 * contract type).
 */
export type ServiceRefOptions<S extends AnyService> = ServiceClientOptions &
  ([StreamMethodName<S>] extends [never]
    ? { readonly streams?: Readonly<Record<string, never>> }
    : { readonly streams: { readonly [M in StreamMethodName<S>]: true } });

/** The arguments after the ref: options are required when the contract has streaming methods. */
export type ServiceRefOptionsArgs<S extends AnyService> = [StreamMethodName<S>] extends [never]
  ? [options?: ServiceRefOptions<S>]
  : [options: ServiceRefOptions<S>];

/** The transport the proxy calls through: `RpcConnection.callMethod` and `streamMethod`. */
export interface ServiceTransport {
  call(queue: string, method: string, request: unknown, options?: CallOptions): Promise<unknown>;
  stream: StreamMethod;
}

/** What `createServiceClient` reads from the options of either kind of client. */
type AnyClientOptions = ServiceClientOptions & {
  readonly streams?: Readonly<Partial<Record<string, boolean>>>;
};

const CLIENT_OPTION_NAMES = optionNames({
  queue: true,
  validateInput: true,
  validateOutput: true,
  streams: true,
} satisfies Record<keyof AnyClientOptions, true>);

/** What a client proxy knows about itself, under a symbol key that no method name can take. */
interface ClientInfo {
  readonly name: string;
  readonly queue: string;
  readonly service: AnyService | undefined;
}

const CLIENT_INFO = Symbol('rabbit-rpc.client');

/** Errors whose details a client already checked against an async schema: error → `service.method`. */
const verified = new WeakMap<RpcError, string>();

/**
 * Builds the typed proxy of `rpc.client(...)`. With the contract value, it has exactly the
 * contract's methods and can validate; with a {@link ServiceRef} (type-only import), any
 * method name is called as it is and nothing is validated.
 */
export function createServiceClient<S extends AnyService>(
  transport: ServiceTransport,
  target: S | ServiceRef<S>,
  options: AnyClientOptions = {},
): ServiceClient<S> {
  checkOptionNames(options, CLIENT_OPTION_NAMES, 'client()');
  const service = isServiceDefinition(target) ? target : undefined;
  let name: string;
  let queue: string;
  if (service) {
    name = service.name;
    queue = options.queue ?? service.queue;
  } else {
    const ref = (typeof target === 'string' ? { name: target } : target) as {
      name?: unknown;
      queue?: unknown;
    } | null;
    if (
      typeof ref !== 'object' ||
      ref === null ||
      typeof ref.name !== 'string' ||
      ref.name === ''
    ) {
      throw new RpcError(
        'INVALID_ARGUMENT',
        'client() needs a contract, a service name or { name, queue }',
      );
    }
    name = ref.name;
    queue = options.queue ?? (typeof ref.queue === 'string' ? ref.queue : `rpc.${name}`);
    if (options.validateInput === true || options.validateOutput === true) {
      throw new RpcError(
        'INVALID_ARGUMENT',
        'validateInput and validateOutput need the contract value, not only its name',
      );
    }
    const untrustedStreams: unknown = options.streams;
    if (
      untrustedStreams !== undefined &&
      (typeof untrustedStreams !== 'object' || untrustedStreams === null)
    ) {
      throw new RpcError('INVALID_ARGUMENT', 'streams must be an object: { methodName: true }');
    }
  }
  checkQueueName(queue);
  const info: ClientInfo = { name, queue, service };
  const validateInput = options.validateInput === true;
  const validateOutput = options.validateOutput === true;

  const makeMethod = (method: string, spec: MethodSpec | undefined) =>
    async function callServiceMethod(input?: unknown, callOptions?: CallOptions): Promise<unknown> {
      if (spec && validateInput) {
        const checked = await validate(spec.input, input);
        if (!checked.ok) {
          throw validationError(
            'INVALID_ARGUMENT',
            `${name}.${method}: invalid input`,
            checked.issues,
          );
        }
      }
      // The contract's default; the call's own option wins.
      const options =
        spec?.idempotent === true && callOptions?.idempotent === undefined
          ? { ...callOptions, idempotent: true }
          : callOptions;
      let reply: unknown;
      try {
        reply = await transport.call(queue, method, input, options);
      } catch (error) {
        if (spec && error instanceof RpcError) await verifyDeclared(error, name, method, spec);
        throw error;
      }
      if (!spec || !validateOutput) return reply;
      const checked = await validate(spec.output, reply);
      if (!checked.ok) {
        throw validationError('INTERNAL', `${name}.${method}: invalid reply`, checked.issues);
      }
      return checked.value;
    };

  const makeStreamMethod = (method: string, spec: MethodSpec | undefined) =>
    function streamServiceMethod(input?: unknown, streamOptions?: StreamOptions): ItemStream {
      const items = transport.stream(queue, method, input, streamOptions);
      if (!spec) return items;
      return new CheckedStream(items, streamChecks(name, method, spec, input, options));
    };

  const streams = service ? undefined : options.streams;
  const streamsByName = (method: string) =>
    streams !== undefined && Object.hasOwn(streams, method) && streams[method] === true;
  const makeAny = (method: string, spec: MethodSpec | undefined) =>
    (spec ? spec.stream === true : streamsByName(method))
      ? makeStreamMethod(method, spec)
      : makeMethod(method, spec);

  if (service) {
    const methods: Record<string | symbol, unknown> = { [CLIENT_INFO]: info };
    for (const [method, spec] of Object.entries(service.methods)) {
      methods[method] = makeAny(method, spec);
    }
    return Object.freeze(methods) as ServiceClient<S>;
  }
  // Type-only: no method list at run time, so any string key is a method.
  const cache = new Map<string, unknown>();
  return new Proxy(Object.freeze({ [CLIENT_INFO]: info }), {
    get(targetObject, key) {
      if (typeof key === 'symbol') return (targetObject as Record<symbol, unknown>)[key];
      if (key === 'then') return undefined; // not a thenable: `await client` stays harmless
      let fn = cache.get(key);
      if (!fn) cache.set(key, (fn = makeAny(key, undefined)));
      return fn;
    },
  }) as unknown as ServiceClient<S>;
}

/** The checks a contract client runs around a streaming method's items, per its options. */
function streamChecks(
  service: string,
  method: string,
  spec: MethodSpec,
  input: unknown,
  options: ServiceClientOptions,
): StreamChecks {
  const where = `${service}.${method}`;
  const checkInput = async (): Promise<void> => {
    const checked = await validate(spec.input, input);
    if (!checked.ok)
      throw validationError('INVALID_ARGUMENT', `${where}: invalid input`, checked.issues);
  };
  const checkItem = async (item: unknown): Promise<unknown> => {
    const checked = await validate(spec.output, item);
    if (!checked.ok) throw validationError('INTERNAL', `${where}: invalid item`, checked.issues);
    return checked.value;
  };
  return {
    error: (error) => verifyDeclared(error, service, method, spec),
    ...(options.validateInput === true ? { input: checkInput } : {}),
    ...(options.validateOutput === true ? { item: checkItem } : {}),
  };
}

/** When the error is declared by the method with an async schema, checks its details once. */
async function verifyDeclared(
  error: RpcError,
  service: string,
  method: string,
  spec: MethodSpec,
): Promise<void> {
  const shape = spec.errors?.[error.code];
  if (shape === undefined || !isSchema(shape)) return;
  try {
    const outcome = validate(shape, error.details);
    if (!(outcome instanceof Promise)) return; // a sync schema: the guard checks it itself
    if ((await outcome).ok) verified.set(error, `${service}.${method}`);
  } catch {
    // A schema that throws cannot vouch for the details.
  }
}

/**
 * Narrows a caught error to the errors `method` declares, typed by code:
 *
 * ```ts
 * catch (err) {
 *   if (isServiceError(err, users, 'get')) {
 *     if (err.code === 'NOT_FOUND') console.log(err.details.id); // typed
 *   }
 * }
 * ```
 *
 * True when `err` is an RpcError whose code the method declares and whose `details` pass
 * the declared schema (a types-only declaration is trusted by its code). `source` is the
 * contract, or a client made from it. A client made from a type-only import knows no
 * declarations at run time: pass the `code` you expect (then only the code is checked).
 */
export function isServiceError<S extends AnyService, M extends MethodName<S>>(
  err: unknown,
  source: S | ServiceClient<S>,
  method: M,
): err is ServiceError<S, M>;
export function isServiceError<
  S extends AnyService,
  M extends MethodName<S>,
  C extends ServiceErrorCode<S, M>,
>(err: unknown, source: S | ServiceClient<S>, method: M, code: C): err is ServiceError<S, M, C>;
export function isServiceError(
  err: unknown,
  source: AnyService | object,
  method: string,
  code?: string,
): boolean {
  if (!(err instanceof RpcError)) return false;
  if (code !== undefined && err.code !== code) return false;
  const service = isServiceDefinition(source) ? source : clientInfo(source)?.service;
  if (!service) {
    if (clientInfo(source) === undefined) {
      throw new TypeError('isServiceError() needs a contract or a client made by rpc.client()');
    }
    if (code === undefined) {
      throw new TypeError(
        'isServiceError() on a client made without its contract value needs the expected code',
      );
    }
    return true;
  }
  const spec = Object.hasOwn(service.methods, method) ? service.methods[method] : undefined;
  const shape = spec?.errors?.[err.code];
  if (shape === undefined) return false;
  if (!isSchema(shape)) return true;
  let checked: ReturnType<typeof validateSync>;
  try {
    checked = validateSync(shape, err.details);
  } catch {
    return false; // a schema that throws cannot vouch for the details
  }
  return checked ? checked.ok : verified.get(err) === `${service.name}.${method}`;
}

function clientInfo(source: object): ClientInfo | undefined {
  return (source as Partial<Record<symbol, ClientInfo>>)[CLIENT_INFO];
}
