/**
 * A server's bound on handlers running at once. The broker's prefetch bounds messages, but
 * one message can carry many calls (a batch) and broadcasts come without acks, so no
 * prefetch at all: every handler run takes a slot here first, and waits in arrival order
 * when none is free.
 */
export class Slots {
  #free: number;
  /** Waiters in arrival order; `#head` is the next one (a queue without shift()'s copying). */
  #waiters: Array<() => void> = [];
  #head = 0;

  constructor(limit: number) {
    this.#free = limit;
  }

  /** Waiters not yet given a slot. */
  get waiting(): number {
    return this.#waiters.length - this.#head;
  }

  /** Takes a slot now if one is free. */
  tryTake(): boolean {
    if (this.#free === 0 || this.waiting > 0) return false;
    this.#free--;
    return true;
  }

  /** Resolves once a slot is handed to this waiter; it then holds it until {@link give}. */
  take(): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Gives a slot back: to the next waiter, if any. */
  give(): void {
    if (this.waiting === 0) {
      this.#free++;
      return;
    }
    const next = this.#waiters[this.#head] as () => void;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
    next();
  }
}
