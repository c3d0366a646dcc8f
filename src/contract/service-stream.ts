import { RpcError } from '../errors.js';
import type { StreamOptions } from '../options/call.js';

/** A streamed reply as the transport gives it: `RpcConnection.streamMethod`'s result. */
export type ItemStream = AsyncIterableIterator<unknown> & AsyncDisposable;

/** The transport a client's streaming methods go through: `RpcConnection.streamMethod`. */
export type StreamMethod = (
  queue: string,
  method: string,
  request: unknown,
  options?: StreamOptions,
) => ItemStream;

/** What a contract client checks around a stream; each check is optional. */
export interface StreamChecks {
  /** Runs before the request is sent; throws (INVALID_ARGUMENT) to send nothing. */
  readonly input?: () => Promise<void>;
  /** Checks one item; returns what the application gets, or throws (INTERNAL). */
  readonly item?: (item: unknown) => Promise<unknown>;
  /** Looks at the RpcError that ends the stream before the loop throws it. */
  readonly error?: (error: RpcError) => Promise<void>;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/**
 * A streaming method's items as a contract client hands them out: the transport's stream
 * with the client's checks around it. Like the transport's stream, nothing is sent before
 * the first `next()`, every failure is thrown by `next()`, and `return()` (leaving a
 * `for await` loop) cancels the stream on the server. A failed check also cancels it.
 */
export class CheckedStream implements AsyncIterableIterator<unknown>, AsyncDisposable {
  readonly #items: ItemStream;
  readonly #checks: StreamChecks;
  #inputChecked = false;
  #done = false;
  /** next() calls run one after the other, so the input is checked once and items stay in order. */
  #previous: Promise<unknown> = Promise.resolve();

  constructor(items: ItemStream, checks: StreamChecks) {
    this.#items = items;
    this.#checks = checks;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<unknown, undefined>> {
    const step = this.#previous.then(() => this.#next());
    this.#previous = step.catch(() => undefined);
    return step;
  }

  async #next(): Promise<IteratorResult<unknown, undefined>> {
    if (this.#done) return DONE;
    if (!this.#inputChecked) {
      this.#inputChecked = true;
      // If return() comes meanwhile, the transport's stream is over and next() says done.
      if (this.#checks.input) await this.#failOn(this.#checks.input());
    }
    let next: IteratorResult<unknown, undefined>;
    try {
      next = await this.#items.next();
    } catch (error) {
      this.#done = true;
      if (error instanceof RpcError) await this.#checks.error?.(error);
      throw error;
    }
    if (next.done === true) {
      this.#done = true;
      return DONE;
    }
    if (!this.#checks.item) return next;
    return { value: await this.#failOn(this.#checks.item(next.value)), done: false };
  }

  /** A failed check ends the stream: the server is told to stop, then the error is thrown. */
  async #failOn<T>(check: Promise<T>): Promise<T> {
    try {
      return await check;
    } catch (error) {
      this.#done = true;
      await this.#items[Symbol.asyncDispose]();
      throw error;
    }
  }

  /** Stops reading: the server is told to cancel the stream. */
  async return(): Promise<IteratorResult<unknown, undefined>> {
    this.#done = true;
    await this.#items[Symbol.asyncDispose]();
    return DONE;
  }

  async throw(error?: unknown): Promise<IteratorResult<unknown, undefined>> {
    await this.return();
    throw error instanceof Error ? error : new Error(String(error));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }
}
