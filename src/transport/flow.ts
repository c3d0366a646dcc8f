/**
 * Broker flow control (`connection.blocked`): while a resource alarm blocks publishers,
 * the AMQP library rejects every publish. Publishers wait at this gate instead, each
 * within its own deadline, and pass when the broker unblocks or the connection ends.
 */
export class FlowGate {
  #open: Promise<void> | undefined;
  #release: (() => void) | undefined;

  get blocked(): boolean {
    return this.#open !== undefined;
  }

  /** Resolves when publishing is allowed (at once when it is). */
  wait(): Promise<void> {
    return this.#open ?? Promise.resolve();
  }

  block(): void {
    this.#open ??= new Promise<void>((resolve) => (this.#release = resolve));
  }

  /** Opens the gate: on `connection.unblocked`, and when the connection ends. */
  unblock(): void {
    this.#release?.();
    this.#open = undefined;
    this.#release = undefined;
  }
}
