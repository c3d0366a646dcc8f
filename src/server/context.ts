import type { AmqpMessageLike } from '../transport/types.js';
import { RpcError } from '../errors.js';
import type { HandlerContext } from '../handler.js';
import { setTimeoutAt, type LongTimeout } from '../timers.js';
import type { Slots } from './slots.js';
import type { StreamCredit } from './stream-credit.js';

/** The handler's view of a request; the signal and its deadline timer exist only if read. */
export class RequestContext implements HandlerContext {
  #controller: AbortController | undefined;
  #timer: LongTimeout | undefined;
  #done = false;
  /** Set while the reply streams: the caller's credit. */
  credit: StreamCredit | undefined;
  /** Set once the server gave up on this request past its deadline (see ServerStats.abandoned). */
  abandoned = false;
  /** Settles the delivery when the request is abandoned; unset for requests that need none. */
  onAbandon: (() => void) | undefined;
  /** Which of the server's bounds this run holds a slot of, until it finishes. */
  slots: Slots | undefined;
  /** Its caller cancelled it (a verified cancel). */
  cancelledByCaller = false;
  constructor(
    readonly queue: string,
    private readonly message: AmqpMessageLike,
    readonly deadline: number | undefined,
  ) {}

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.deadline !== undefined && !this.#done) {
        // The caller chose the deadline: it may be further ahead than one Node timer waits.
        this.#timer = setTimeoutAt(() => {
          this.abort(new RpcError('DEADLINE_EXCEEDED', "the caller's deadline has passed"));
        }, this.deadline);
      }
    }
    return this.#controller.signal;
  }
  get headers(): Readonly<Record<string, unknown>> {
    return this.message.properties.headers ?? {};
  }
  get correlationId(): string | undefined {
    return this.message.properties.correlationId;
  }
  get messageId(): string | undefined {
    const { messageId, correlationId } = this.message.properties;
    return messageId ?? correlationId;
  }
  get redelivered(): boolean {
    return this.message.redelivered;
  }
  get method(): string | undefined {
    return this.message.properties.type;
  }
  /** Where the reply goes: matched by cancels. */
  get replyTo(): string | undefined {
    return this.message.properties.replyTo;
  }
  get userId(): string | undefined {
    return this.message.properties.userId;
  }

  /** Aborted already (before it started, if it waited for a slot). */
  get aborted(): boolean {
    return this.#controller?.signal.aborted ?? false;
  }

  abort(reason: RpcError): void {
    if (this.#done) return;
    this.#timer?.clear();
    (this.#controller ??= new AbortController()).abort(reason);
  }

  finish(): void {
    this.#done = true;
    this.#timer?.clear();
  }
}
