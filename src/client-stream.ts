import { decodeReplyOutcome, MORE, type MultiReply } from './caller.js';
import type { ControlPlane } from './control.js';
import { RpcError } from './errors.js';
import {
  CONTROL_QUEUE_HEADER,
  STREAM_HEADER,
  STREAM_SEQ_HEADER,
  STREAM_WINDOW_HEADER,
} from './protocol.js';
import type { AmqpMessageLike } from './transport.js';

/**
 * A streamed reply, read with `for await`. Leaving the loop early (or `return()`, or
 * `await using`) cancels the stream on the server.
 */
export interface RpcStream<TItem> extends AsyncIterableIterator<TItem>, AsyncDisposable {
  next(): Promise<IteratorResult<TItem, undefined>>;
  /** Stops reading; the server is told to stop. */
  return(): Promise<IteratorResult<TItem, undefined>>;
}

/** Starts the call behind a stream; resolves when the stream has ended, rejects with its error. */
export type StartStream = (multi: MultiReply, signal: AbortSignal) => Promise<unknown>;

/**
 * The caller's side of a streamed reply (see `RpcConnection.stream`): an AsyncIterable
 * that publishes the request on the first `next()`, buffers at most `window` items, and
 * grants the server more credit as items are consumed. Leaving the loop early (`break`,
 * `return`, a throw) cancels the call on the server.
 */
export class ClientStream<TItem> implements RpcStream<TItem> {
  readonly #start: StartStream;
  readonly #control: ControlPlane;
  readonly #queue: string;
  readonly #window: number;
  readonly #abort = new AbortController();
  readonly #buffer: TItem[] = [];
  #started = false;
  #ended = false;
  #error: RpcError | undefined;
  #wake: (() => void) | undefined;
  /** Items handed to the application so far. */
  #consumed = 0;
  /** Items received so far: the `rpc-stream-seq` the next one must carry. */
  #received = 0;
  /** Items the server may send in all. */
  #granted: number;
  #id: string | undefined;
  #controlQueue: string | undefined;

  constructor(start: StartStream, control: ControlPlane, queue: string, window: number) {
    this.#start = start;
    this.#control = control;
    this.#queue = queue;
    this.#window = window;
    this.#granted = window;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<TItem, undefined>> {
    if (!this.#started) this.#begin();
    while (this.#buffer.length === 0 && !this.#ended) {
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    if (this.#buffer.length > 0) {
      const value = this.#buffer.shift() as TItem;
      this.#consumed++;
      this.#maybeGrant();
      return { value, done: false };
    }
    if (this.#error) {
      const error = this.#error;
      this.#error = undefined; // thrown once; then the iterator is done
      throw error;
    }
    return { value: undefined, done: true };
  }

  /** Stops reading: the server is told to cancel the stream. */
  return(): Promise<IteratorResult<TItem, undefined>> {
    this.#stop();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<TItem, undefined>> {
    this.#stop();
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  #stop(): void {
    if (!this.#started) {
      this.#started = true; // never publish a request nobody reads
      this.#ended = true;
      return;
    }
    this.#buffer.length = 0;
    if (!this.#ended) this.#abort.abort(new RpcError('CANCELLED', 'the stream was closed'));
    this.#error = undefined;
    this.#ended = true;
    this.#notify(); // a next() waiting meanwhile is done too
  }

  #begin(): void {
    this.#started = true;
    const multi: MultiReply = {
      exchange: '',
      headers: { [STREAM_WINDOW_HEADER]: this.#window },
      onMessage: (message, id) => this.#onMessage(message, id),
      onCancel: (id, replyTo) => this.#control.cancel(this.#queue, id, this.#controlQueue, replyTo),
    };
    this.#start(multi, this.#abort.signal).then(
      () => this.#end(undefined),
      (error: unknown) => this.#end(RpcError.from(error, 'UNKNOWN')),
    );
  }

  #onMessage(message: AmqpMessageLike, id: string): unknown {
    this.#id = id;
    const headers = message.properties.headers;
    const kind = headers?.[STREAM_HEADER];
    const controlQueue = headers?.[CONTROL_QUEUE_HEADER];
    if (typeof controlQueue === 'string') this.#controlQueue = controlQueue;
    const outcome = decodeReplyOutcome(message);
    if (kind === 'item') {
      const restarted = this.#restarted(headers?.[STREAM_SEQ_HEADER], id);
      if (restarted) return restarted;
      if (outcome instanceof RpcError) return outcome;
      this.#push(outcome as TItem);
      return MORE;
    }
    if (kind === 'end') return outcome instanceof RpcError ? outcome : undefined;
    // A plain reply (a server that does not stream): a stream of one item, or its error.
    if (outcome instanceof RpcError) return outcome;
    this.#push(outcome as TItem);
    return undefined;
  }

  /**
   * An item out of sequence: the request was delivered again (its first server was cut off
   * mid-stream, or gave up at its drain timeout) and runs anew from item 0 elsewhere.
   * Its items would repeat those already read, or differ from them: the stream ends with
   * UNAVAILABLE (read it again), and the new run is cancelled. Undefined when in sequence
   * (or from a server that sends no sequence numbers).
   */
  #restarted(seq: unknown, id: string): RpcError | undefined {
    const expected = this.#received;
    const got = typeof seq === 'bigint' ? Number(seq) : seq;
    if (typeof got !== 'number') return undefined;
    if (got === expected) {
      this.#received++;
      return undefined;
    }
    if (this.#controlQueue !== undefined)
      this.#control.cancel(this.#queue, id, this.#controlQueue, '');
    return new RpcError(
      'UNAVAILABLE',
      `the stream was cut off after ${expected} items and started again from item ${got}: read it again`,
    );
  }

  #push(item: TItem): void {
    if (this.#ended) return;
    this.#buffer.push(item);
    this.#notify();
  }

  #end(error: RpcError | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Once half the window is consumed, the server may send a full window past what was read. */
  #maybeGrant(): void {
    if (this.#ended || this.#id === undefined || this.#controlQueue === undefined) return;
    if (this.#granted - this.#consumed > this.#window / 2) return;
    this.#granted = this.#consumed + this.#window;
    this.#control.credit(this.#controlQueue, this.#id, this.#granted);
  }
}
