/**
 * The server's side of stream flow control: item `seq` (0-based) may be sent once the
 * caller has granted more than `seq` items. The caller grants a window at the start and
 * more as it consumes, so a server never runs more than a window ahead of a slow consumer.
 */
export class StreamCredit {
  #granted: number;
  readonly #window: number;
  /** The next item to send: items before it are sent. */
  #next = 0;
  #wake: (() => void) | undefined;

  constructor(window: number) {
    this.#granted = window;
    this.#window = window;
  }

  /**
   * The caller accepts `total` items in all; credit only grows (messages may repeat). Never
   * more than a window past what is sent, counting the item on its way: a caller grants what
   * it has read plus its window, and has read no more than was sent, so a larger grant
   * (forged, or a broken peer) is clamped and the server still runs at most a window ahead.
   */
  grant(total: number): void {
    // `#next + 1`: item `#next` may be on its way once its ready() has resolved.
    const bounded = Math.min(total, this.#next + 1 + this.#window);
    if (bounded <= this.#granted) return;
    this.#granted = bounded;
    this.#wake?.();
  }

  /** Resolves once item `seq` may be sent; rejects with the signal's reason if it aborts first. */
  ready(seq: number, signal: AbortSignal): Promise<void> {
    this.#next = Math.max(this.#next, seq);
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (seq < this.#granted) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.#wake = undefined;
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#wake = () => {
        if (seq >= this.#granted) return;
        this.#wake = undefined;
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
    });
  }
}
