import { RpcError, type RpcErrorCode } from '../errors.js';
import { checkOptionNames } from '../option-names.js';
import { serveOptionNamesWith, type ServeOptions } from '../options/serve.js';
import type { Handler, HandlerContext } from '../handler.js';
import { isSchema } from './define-service.js';
import type {
  AnyService,
  MethodSpec,
  ServiceContext,
  ServiceImplementation,
  ValidationIssue,
} from './types.js';
import { validate } from './validate.js';

/** Options of `rpc.serve(service, implementation, options)`. */
export interface ServiceServeOptions extends ServeOptions {
  /** Consume this queue instead of the contract's (clients must use it too). */
  queue?: string;
  /**
   * Validate each reply against the method's output schema, and the `details` of each
   * declared error against its schema; a mismatch becomes an INTERNAL error reply.
   * @default false
   */
  validateOutput?: boolean;
}

const SERVICE_SERVE_OPTION_NAMES = serveOptionNamesWith({
  queue: true,
  validateOutput: true,
} satisfies Record<Exclude<keyof ServiceServeOptions, keyof ServeOptions>, true>);

/** What `rpc.serve` needs to run a service: a queue, one handler, the core options. */
export interface ServiceServerPlan {
  readonly queue: string;
  readonly handler: Handler;
  readonly options: ServeOptions;
}

type MethodHandler = (input: unknown, ctx: ServiceContext<AnyService, string>) => unknown;

interface MethodEntry {
  readonly name: string;
  readonly spec: MethodSpec;
  readonly run: MethodHandler;
}

/**
 * Turns a contract and its implementation into one core handler that dispatches on the
 * AMQP `type` property (`ctx.method`): no or unknown method → UNIMPLEMENTED; input that
 * fails the schema → INVALID_ARGUMENT with `details.issues`; with `validateOutput`, a reply
 * (or declared error details) that fails its schema → INTERNAL with `details.issues`.
 * A streaming method's AsyncIterable goes to the core server, which streams it; with
 * `validateOutput`, each item is validated on its way and a bad one ends the stream with
 * INTERNAL.
 *
 * @throws RpcError INVALID_ARGUMENT when the implementation lacks a method of the contract.
 */
export function planServiceServer<S extends AnyService>(
  service: S,
  implementation: ServiceImplementation<S>,
  options: ServiceServeOptions = {},
): ServiceServerPlan {
  const untrusted: unknown = implementation; // JavaScript callers can pass anything
  if (typeof untrusted !== 'object' || untrusted === null) {
    throw new RpcError('INVALID_ARGUMENT', `serve(${service.name}) needs an implementation object`);
  }
  const table = new Map<string, MethodEntry>();
  const impl = implementation as unknown as Readonly<Record<string, unknown>>;
  for (const [name, spec] of Object.entries(service.methods)) {
    const run = Object.hasOwn(impl, name) ? impl[name] : undefined;
    if (typeof run !== 'function') {
      throw new RpcError(
        'INVALID_ARGUMENT',
        `the implementation of service "${service.name}" lacks method "${name}"`,
      );
    }
    table.set(name, { name, spec, run: run.bind(implementation) as MethodHandler });
  }
  checkOptionNames(options, SERVICE_SERVE_OPTION_NAMES, `serve(${service.name})`);
  const { queue, validateOutput = false, ...serveOptions } = options;
  const serviceName = service.name;

  const handler: Handler = async (request, ctx) => {
    const methodName = ctx.method;
    const entry = methodName === undefined ? undefined : table.get(methodName);
    if (!entry) {
      throw new RpcError(
        'UNIMPLEMENTED',
        methodName === undefined
          ? `service "${serviceName}" needs a method name: call it with rpc.client(service) (from the command line: rabbit-rpc call --method <name>)`
          : `service "${serviceName}" has no method "${methodName}"`,
        { details: { service: serviceName, method: methodName ?? null } },
      );
    }
    const input = await validate(entry.spec.input, request);
    if (!input.ok) {
      throw validationError(
        'INVALID_ARGUMENT',
        `${serviceName}.${entry.name}: invalid input`,
        input.issues,
      );
    }
    let result: unknown;
    try {
      result = await entry.run(input.value, new ServiceRequestContext(ctx, serviceName, entry));
    } catch (thrown) {
      if (validateOutput) await checkDeclaredError(serviceName, entry, thrown);
      throw thrown;
    }
    if (entry.spec.stream === true)
      return streamedItems(serviceName, entry, result, validateOutput);
    if (isAsyncIterable(result)) {
      // The core server would stream it; the contract's clients expect one reply.
      await closeIterable(result);
      throw new RpcError(
        'INTERNAL',
        `${serviceName}.${entry.name} returned an AsyncIterable but is not a streaming method (stream: true)`,
      );
    }
    if (!validateOutput) return result;
    const output = await validate(entry.spec.output, result);
    if (!output.ok) {
      throw validationError(
        'INTERNAL',
        `${serviceName}.${entry.name}: invalid output`,
        output.issues,
      );
    }
    return output.value;
  };

  return { queue: queue ?? service.queue, handler, options: serveOptions };
}

/**
 * What a streaming method's handler returned, ready for the core server: its AsyncIterable,
 * with each item (and each declared error that ends it) validated when `validateOutput` is on.
 */
function streamedItems(
  service: string,
  entry: MethodEntry,
  result: unknown,
  validateOutput: boolean,
): AsyncIterable<unknown> {
  if (!isAsyncIterable(result)) {
    throw new RpcError(
      'INTERNAL',
      `${service}.${entry.name} is a streaming method: its handler must return an AsyncIterable`,
    );
  }
  if (!validateOutput) return result;
  return {
    [Symbol.asyncIterator]: () => {
      const items = result[Symbol.asyncIterator]();
      return {
        next: async (): Promise<IteratorResult<unknown>> => {
          let next: IteratorResult<unknown>;
          try {
            next = await items.next();
          } catch (thrown) {
            await checkDeclaredError(service, entry, thrown);
            throw thrown;
          }
          if (next.done === true) return next;
          const output = await validate(entry.spec.output, next.value);
          if (!output.ok) {
            // The core server then calls return(): the handler's finally blocks run.
            throw validationError(
              'INTERNAL',
              `${service}.${entry.name}: invalid item`,
              output.issues,
            );
          }
          return { done: false, value: output.value };
        },
        return: async (): Promise<IteratorResult<unknown>> => {
          await items.return?.();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  );
}

/** Stops an AsyncIterable that will not be sent (runs an async generator's finally blocks). */
async function closeIterable(source: AsyncIterable<unknown>): Promise<void> {
  await source[Symbol.asyncIterator]()
    .return?.()
    .catch(() => undefined);
}

/** An error whose details carry validation issues: `{ issues: [{ message, path }] }`. */
export function validationError(
  code: RpcErrorCode,
  message: string,
  issues: readonly ValidationIssue[],
): RpcError {
  return new RpcError(code, message, { details: { issues } });
}

/** A thrown declared error whose details miss their schema becomes INTERNAL. */
async function checkDeclaredError(
  service: string,
  entry: MethodEntry,
  thrown: unknown,
): Promise<void> {
  if (!(thrown instanceof RpcError)) return;
  const shape = entry.spec.errors?.[thrown.code];
  if (shape === undefined || !isSchema(shape)) return;
  const checked = await validate(shape, thrown.details);
  if (!checked.ok) {
    throw validationError(
      'INTERNAL',
      `${service}.${entry.name}: details of ${thrown.code} do not match the contract`,
      checked.issues,
    );
  }
}

/** The core context plus the method, the service and a typed error factory. */
class ServiceRequestContext implements ServiceContext<AnyService, string> {
  constructor(
    private readonly ctx: HandlerContext,
    readonly service: string,
    private readonly entry: MethodEntry,
  ) {}

  get method(): string {
    return this.entry.name;
  }
  get signal(): AbortSignal {
    return this.ctx.signal;
  }
  get deadline(): number | undefined {
    return this.ctx.deadline;
  }
  get headers(): Readonly<Record<string, unknown>> {
    return this.ctx.headers;
  }
  get correlationId(): string | undefined {
    return this.ctx.correlationId;
  }
  get messageId(): string | undefined {
    return this.ctx.messageId;
  }
  get redelivered(): boolean {
    return this.ctx.redelivered;
  }
  get queue(): string {
    return this.ctx.queue;
  }
  get userId(): string | undefined {
    return this.ctx.userId;
  }

  error(code: RpcErrorCode, message: string, details?: unknown): never {
    return new RpcError(code, message, details === undefined ? {} : { details }) as never;
  }
}
