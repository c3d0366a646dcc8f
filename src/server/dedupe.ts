import type { DedupeOptions } from '../options/serve.js';
import { Replied } from './execute.js';

/** A completed request's answer, kept for its duplicates. */
interface Done<T> {
  readonly value: T;
  readonly bytes: number;
  readonly expiresAt: number;
}

/** A request running now; its duplicates wait for its answer. */
interface Running<T> {
  readonly answered: Promise<T | undefined>;
  readonly resolve: (value: T | undefined) => void;
}

/** What {@link DedupeCache.claim} found for a key. */
export type Claim<T> =
  /** The first delivery: run it, then `complete()` or `abandon()` the key. */
  | { readonly state: 'first' }
  /** Answered before: send `value` again. */
  | { readonly state: 'done'; readonly value: T }
  /** Running now: `answered` resolves with its answer, or undefined if it was abandoned. */
  | { readonly state: 'running'; readonly answered: Promise<T | undefined> };

const FIRST: Claim<never> = Object.freeze({ state: 'first' });

/**
 * A server's memory of the requests it has answered, by stable request id, so that a
 * duplicate (a retry of an idempotent call, a redelivery) gets the same answer instead of
 * running its handler again. Bounded three ways: entries (least recently used first),
 * bytes, and time (each entry lives until its `expiresAt`). Entries are in memory and per
 * server: a duplicate that reaches another process, or comes after a restart, runs again.
 */
export class DedupeCache<T> {
  readonly #done = new Map<string, Done<T>>();
  readonly #running = new Map<string, Running<T>>();
  readonly #limits: Required<DedupeOptions>;
  readonly #sizeOf: (value: T) => number;
  readonly #now: () => number;
  #bytes = 0;

  /**
   * @param sizeOf the bytes an answer holds, for the `maxBytes` bound
   * @param now the clock (tests pass their own)
   */
  constructor(
    limits: Required<DedupeOptions>,
    sizeOf: (value: T) => number,
    now: () => number = Date.now,
  ) {
    this.#limits = limits;
    this.#sizeOf = sizeOf;
    this.#now = now;
  }

  /** Answers kept now. */
  get size(): number {
    return this.#done.size;
  }

  /** Bytes the kept answers take, as `sizeOf` counts them. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Keys whose first delivery is running. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Looks `key` up. When it is unknown (or expired), the caller becomes its owner: the key
   * counts as running until the caller calls {@link complete} or {@link abandon}.
   */
  claim(key: string): Claim<T> {
    const running = this.#running.get(key);
    if (running) return { state: 'running', answered: running.answered };
    const done = this.#done.get(key);
    if (done) {
      this.#done.delete(key);
      if (done.expiresAt > this.#now()) {
        this.#done.set(key, done); // most recently used now
        return { state: 'done', value: done.value };
      }
      this.#bytes -= done.bytes;
    }
    let resolve!: (value: T | undefined) => void;
    const answered = new Promise<T | undefined>((r) => (resolve = r));
    this.#running.set(key, { answered, resolve });
    return FIRST;
  }

  /**
   * Resolves with the answer to send again, waiting for a running first delivery; or with
   * `undefined` when the caller owns `key` now and must run the request.
   */
  async earlierAnswer(key: string): Promise<T | undefined> {
    for (;;) {
      const claim = this.claim(key);
      if (claim.state === 'first') return undefined;
      if (claim.state === 'done') return claim.value;
      const value = await claim.answered;
      if (value !== undefined) return value;
      // The first delivery was abandoned: claim again (the first waiter becomes the owner).
    }
  }

  /**
   * The owner of `key` answered with `value`: its waiting duplicates get it, and later ones
   * until `expiresAt` (epoch ms), unless the bounds evict it first. An answer larger than
   * `maxBytes` is handed to the waiting duplicates but not kept.
   */
  complete(key: string, value: T, expiresAt: number): void {
    const running = this.#running.get(key);
    this.#running.delete(key);
    const now = this.#now();
    this.#dropExpired(now);
    const bytes = this.#sizeOf(value);
    if (expiresAt > now && bytes <= this.#limits.maxBytes) {
      const previous = this.#done.get(key);
      if (previous) {
        this.#done.delete(key);
        this.#bytes -= previous.bytes;
      }
      this.#done.set(key, { value, bytes, expiresAt });
      this.#bytes += bytes;
      this.#evict();
    }
    running?.resolve(value);
  }

  /**
   * The owner of `key` gave no answer that reached anyone (its channel closed under it):
   * nothing is kept, and a waiting duplicate becomes the owner and runs the request.
   */
  abandon(key: string): void {
    const running = this.#running.get(key);
    this.#running.delete(key);
    running?.resolve(undefined);
  }

  /** The expiry of an answer completed now, for a request with this deadline (if any). */
  expiresAt(deadline: number | undefined): number {
    const byTtl = this.#now() + this.#limits.ttlMs;
    // After its deadline a duplicate is dropped unrun anyway: keeping the answer is waste.
    return deadline === undefined ? byTtl : Math.min(deadline, byTtl);
  }

  /** Least recently used first, while over a bound. */
  #evict(): void {
    while (this.#done.size > this.#limits.maxEntries || this.#bytes > this.#limits.maxBytes) {
      const oldest = this.#done.entries().next();
      if (oldest.done === true) return;
      const [key, entry] = oldest.value;
      this.#done.delete(key);
      this.#bytes -= entry.bytes;
    }
  }

  /**
   * Drops expired entries from the least recently used end, up to the first live one:
   * cheap, and enough since most entries share the same lifetime. Others expire on lookup
   * or are evicted by the bounds.
   */
  #dropExpired(now: number): void {
    for (const [key, entry] of this.#done) {
      if (entry.expiresAt > now) return;
      this.#done.delete(key);
      this.#bytes -= entry.bytes;
    }
  }
}

/**
 * The cache key of a request: its `message_id` within its method (`type`) and its caller's
 * `user_id` (checked by the broker), or undefined when it has no `message_id` (an empty one
 * counts as none). The user is part of the key so that a reply is only ever sent again to
 * the user it answered, and another user's request with the same id (a replay, or a guess
 * at the next one) runs on its own instead of reading or poisoning the cache. Requests
 * without `user_id` share the anonymous space. Length-prefixed, so no two triples make the
 * same key.
 */
export function dedupeKey(
  messageId: string | undefined,
  method: string | undefined,
  userId?: string,
): string | undefined {
  if (messageId === undefined || messageId === '') return undefined;
  const type = method ?? '';
  const user = userId === undefined ? '-' : `${userId.length}:${userId}`;
  return `${user}${type.length}:${type}${messageId}`;
}

/** The bytes an answer holds in the deduplication cache: its body and error texts. */
export function answerBytes(answer: Replied): number {
  let bytes = 64 + answer.reply.body.byteLength;
  if (answer.headers) {
    for (const value of Object.values(answer.headers)) {
      bytes += typeof value === 'string' ? value.length : 8;
    }
  }
  return bytes;
}

/**
 * The answer as the cache keeps it: a copy of the body, since a small Buffer is a view that
 * pins an 8 KiB pool slab.
 */
export function keptAnswer(answer: Replied): Replied {
  const { body, contentType } = answer.reply;
  return new Replied({ body: new Uint8Array(body), contentType }, answer.headers, answer.poison);
}
