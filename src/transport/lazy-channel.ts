import type { AmqpChannelLike } from './types.js';
import type { Link } from './link.js';

/** A channel opened on first use and again after it closed; concurrent users share one. */
export class LazyChannel {
  readonly #link: Link;
  #channel: AmqpChannelLike | undefined;
  #opening: Promise<AmqpChannelLike> | undefined;

  constructor(link: Link) {
    this.#link = link;
  }

  get current(): AmqpChannelLike | undefined {
    return this.#channel;
  }

  open(): Promise<AmqpChannelLike> {
    if (this.#channel && !this.#channel.closed) return Promise.resolve(this.#channel);
    this.#opening ??= this.#openChannel().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  async #openChannel(): Promise<AmqpChannelLike> {
    const client = await this.#link.ready();
    const channel = await client.channel();
    this.#channel = channel;
    return channel;
  }

  /** The connection is gone (or the channel is): the next open() opens a new one. */
  forget(): void {
    this.#channel = undefined;
    this.#opening = undefined;
  }
}
