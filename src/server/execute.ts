import type { AmqpField, AmqpMessageLike } from '../transport/types.js';
import { encodeBody, type EncodedBody } from '../protocol/codec.js';
import { encodeErrorReply } from '../protocol/error-reply.js';
import { RpcError } from '../errors.js';
import type { Handler } from '../handler.js';
import type { Logger } from '../logger.js';
import type { RequestContext } from './context.js';
import type { ErrorCounts } from './describe.js';
import { admitCall, Refusal } from './admission.js';

/** The reply of a handler run: a success or an error, ready to publish. */
export class Replied {
  constructor(
    readonly reply: EncodedBody,
    readonly headers: Record<string, AmqpField> | undefined,
    /** The request itself was at fault: undecodable or too large. */
    readonly poison: boolean,
  ) {}
}

/** A handler's AsyncIterable, to send to a caller that streams. */
export class Streamed {
  constructor(
    readonly source: AsyncIterable<unknown>,
    readonly window: number,
  ) {}
}

/** What running a request gives: synchronously when the handler answered at once. */
export type Outcome = Replied | Streamed | Promise<Replied | Streamed>;

/**
 * Runs the (intercepted) handler of one server and turns what it gives into what to send:
 * a reply, an error reply, or a stream. Synchronous when the handler is (most handlers
 * answer without awaiting anything): the fast path stays promise-free.
 */
export class Executor {
  /** Lowered when the broker's own limit is learnt (a reply over it closed the channel). */
  maxPayloadBytes: number;

  constructor(
    private readonly queue: string,
    private readonly handler: Handler,
    private readonly exposeErrorStack: boolean,
    private readonly requireUserId: boolean,
    maxPayloadBytes: number,
    private readonly logger: Logger,
    /** Error replies by code, for describe answers. */
    readonly errors: ErrorCounts,
  ) {
    this.maxPayloadBytes = maxPayloadBytes;
  }

  /**
   * Admits a request ({@link admitCall}: user id, size, decoding) and runs the handler on
   * it: the reply (success or error) to send, or the stream to send item by item when the
   * handler returned one to a caller that streams (`window` set).
   */
  execute(message: AmqpMessageLike, ctx: RequestContext, window: number | undefined): Outcome {
    const request = admitCall(message, this.requireUserId, this.maxPayloadBytes);
    if (request instanceof Refusal) return this.refused(request, ctx);
    return this.invoke(request, ctx, window);
  }

  /** Runs the handler on an admitted request; `window` set when the caller streams. */
  invoke(request: unknown, ctx: RequestContext, window: number | undefined): Outcome {
    try {
      const result = this.handler(request, ctx);
      if (isThenable(result)) {
        return Promise.resolve(result).then(
          (value) => this.#outcomeOf(value, ctx, window),
          (thrown: unknown) => this.failure(thrown, ctx, false),
        );
      }
      return this.#outcomeOf(result, ctx, window);
    } catch (thrown) {
      return this.failure(thrown, ctx, false);
    }
  }

  /** The error reply to a request refused at admission. */
  refused(refusal: Refusal, ctx: RequestContext): Replied {
    return this.failure(refusal.error, ctx, refusal.poison);
  }

  /** The error reply for whatever was thrown. */
  failure(thrown: unknown, ctx: RequestContext, poison: boolean): Replied {
    return new Replied(...this.errorReply(thrown, ctx.correlationId), poison);
  }

  /** A handler's result as a reply body; RESOURCE_EXHAUSTED over `maxPayloadBytes`. */
  encodeReply(result: unknown): EncodedBody {
    const reply = encodeBody(result, 'INTERNAL');
    if (reply.body.length > this.maxPayloadBytes) {
      throw new RpcError(
        'RESOURCE_EXHAUSTED',
        `reply of ${reply.body.length} bytes exceeds maxPayloadBytes (${this.maxPayloadBytes})`,
      );
    }
    return reply;
  }

  /** The error reply for whatever a handler threw: details in the body, the code in headers. */
  errorReply(
    thrown: unknown,
    correlationId: string | undefined,
  ): [EncodedBody, Record<string, AmqpField>] {
    const error = RpcError.from(thrown, 'UNKNOWN');
    this.errors.count(error.code);
    if (error.code === 'UNKNOWN' || error.code === 'INTERNAL') {
      // An unexpected failure: worth a look. Deliberate RpcErrors are the caller's business.
      this.logger.warn(
        { queue: this.queue, code: error.code, correlationId, err: thrown },
        'handler failed',
      );
    }
    const stack = this.exposeErrorStack && thrown instanceof Error ? thrown.stack : undefined;
    return encodeErrorReply(error, stack);
  }

  /** What to send for the handler's result: a reply, or a stream to a caller that streams. */
  #outcomeOf(result: unknown, ctx: RequestContext, window: number | undefined): Replied | Streamed {
    try {
      if (isAsyncIterable(result)) {
        if (window !== undefined) return new Streamed(result, window);
        closeIterable(result);
        throw new RpcError(
          'FAILED_PRECONDITION',
          'this handler streams its reply: read it with stream() (from the command line: rabbit-rpc call --stream)',
        );
      }
      return new Replied(this.encodeReply(result), undefined, false);
    } catch (thrown) {
      return this.failure(thrown, ctx, false);
    }
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as Partial<PromiseLike<unknown>>).then === 'function'
  );
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  );
}

/** Stops a stream that will not be sent (runs an async generator's finally blocks). */
export function closeIterable(source: AsyncIterable<unknown>): void {
  source[Symbol.asyncIterator]()
    .return?.()
    .catch(() => undefined);
}
