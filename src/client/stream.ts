import { decodeReplyOutcome } from '../protocol/error-reply.js';
import { MORE, type MultiReply } from './multi-reply.js';
import type { ControlPlane } from '../control/control-plane.js';
import { RpcError } from '../errors.js';
import {
  CONTROL_QUEUE_HEADER,
  STREAM_HEADER,
  STREAM_SEQ_HEADER,
  STREAM_WINDOW_HEADER,
} from '../protocol/names.js';
import type { AmqpMessageLike } from '../transport/types.js';

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
  /** Items received so far: the `rpc-stream-seq` the next item must carry. */
  #received = 0;
  /** Where the request asked for replies: named in credit, as the server checks. */
  #replyTo = '';
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
      onMessage: (message, id, replyTo) => this.#onMessage(message, id, replyTo),
      onCancel: (id, replyTo) => this.#control.cancel(this.#queue, id, this.#controlQueue, replyTo),
    };
    this.#start(multi, this.#abort.signal).then(
      () => this.#end(undefined),
      (error: unknown) => this.#end(RpcError.from(error, 'UNKNOWN')),
    );
  }

  #onMessage(message: AmqpMessageLike, id: string, replyTo: string): unknown {
    this.#id = id;
    this.#replyTo = replyTo;
    const headers = message.properties.headers;
    const kind = headers?.[STREAM_HEADER];
    const controlQueue = headers?.[CONTROL_QUEUE_HEADER];
    if (typeof controlQueue === 'string') this.#controlQueue = controlQueue;
    if (kind === 'item') {
      const broken = this.#checkItem(headers?.[STREAM_SEQ_HEADER]);
      if (broken) {
        // Ends the call with this code, and tells the server to stop (a cancel).
        this.#abort.abort(broken);
        return MORE;
      }
      this.#received++;
      const outcome = decodeReplyOutcome(message);
      if (outcome instanceof RpcError) return outcome;
      this.#push(outcome as TItem);
      return MORE;
    }
    const outcome = decodeReplyOutcome(message);
    if (kind === 'end') return outcome instanceof RpcError ? outcome : undefined;
    // A plain reply (a server that does not stream): a stream of one item, or its error.
    if (outcome instanceof RpcError) return outcome;
    this.#push(outcome as TItem);
    return undefined;
  }

  /**
   * Why an item breaks the stream's rules, if it does. Items come in order, each once
   * (`rpc-stream-seq` 0, 1, 2, …), never past the credit given: a server, or a peer that
   * learned the call's id, cannot make the caller buffer without bound (RESOURCE_EXHAUSTED)
   * or hand it items out of order (DATA_LOSS). Item 0 again means the request was delivered
   * again (its first server was cut off mid-stream, or gave up at its drain timeout) and
   * runs anew elsewhere: its items would repeat those already read, so the stream ends with
   * UNAVAILABLE (read it again). A server that sends no sequence numbers is not checked for
   * order. A server without a control queue gets no credit and cannot be slowed down; then
   * at most {@link UNCONTROLLED_BUFFER_ITEMS} (or the window, if larger) items may wait
   * unread. The stream's call then ends with the error, and the server is told to stop.
   */
  #checkItem(seqHeader: unknown): RpcError | undefined {
    const seq = typeof seqHeader === 'bigint' ? Number(seqHeader) : seqHeader;
    const expected = this.#received;
    if (typeof seq === 'number' && seq !== expected) {
      if (seq === 0) {
        return new RpcError(
          'UNAVAILABLE',
          `the stream was cut off after ${expected} items and started again from item 0: read it again`,
        );
      }
      return new RpcError('DATA_LOSS', `stream item ${seq} came when item ${expected} was due`);
    }
    const overrun =
      this.#controlQueue === undefined
        ? this.#buffer.length >= Math.max(this.#window, UNCONTROLLED_BUFFER_ITEMS)
        : expected >= this.#granted;
    if (overrun) {
      return new RpcError(
        'RESOURCE_EXHAUSTED',
        `the server sent stream item ${expected} beyond the credit given (${this.#granted})`,
      );
    }
    return undefined;
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
    this.#control.credit(this.#controlQueue, this.#id, this.#granted, this.#replyTo);
  }
}

/**
 * Unread items a caller holds from a server that has no control queue (so no flow control,
 * docs/reliability.md "Permissions") before it fails the stream with RESOURCE_EXHAUSTED.
 */
const UNCONTROLLED_BUFFER_ITEMS = 1_000;
