/**
 * Values by their string id in an open-addressed array, for the calls and batches waiting
 * for replies. Not a `Map`: with thousands of entries added and deleted every second, V8
 * promoted nearly everything a pending call referenced to the old generation (2.2 MB per
 * scavenge at 20,000 calls/s, against 0.8 KB with this table), which made each scavenge
 * take 4-5 ms instead of under 1 and grew the heap until the next full collection (D40).
 *
 * Linear probing, no tombstones: a delete shifts the entries after it back (Knuth's
 * algorithm R), so a lookup stops at the first empty slot. Keys that are looked up may be
 * anything a peer sends; keys that are stored are the library's random ids, so the probe
 * runs stay short.
 */
export class IdTable<T extends { readonly id: string }> {
  #slots: Array<T | undefined>;
  #mask: number;
  #size = 0;

  constructor() {
    this.#slots = new Array<T | undefined>(MIN_CAPACITY).fill(undefined);
    this.#mask = MIN_CAPACITY - 1;
  }

  get size(): number {
    return this.#size;
  }

  get(id: string): T | undefined {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = hashOf(id) & mask; ; i = (i + 1) & mask) {
      const value = slots[i];
      if (value === undefined || value.id === id) return value;
    }
  }

  /** Stores `value` under its id, in place of any value with the same id. */
  set(value: T): void {
    if ((this.#size + 1) * 2 > this.#slots.length) this.#resize(this.#slots.length * 2);
    if (this.#put(value)) this.#size++;
  }

  /** Removes the value stored under `id`; true if there was one. */
  delete(id: string): boolean {
    const slots = this.#slots;
    const mask = this.#mask;
    let hole = hashOf(id) & mask;
    for (;;) {
      const value = slots[hole];
      if (value === undefined) return false;
      if (value.id === id) break;
      hole = (hole + 1) & mask;
    }
    // Move back every later entry of the run whose home is not between the hole and it.
    for (let i = (hole + 1) & mask; ; i = (i + 1) & mask) {
      const value = slots[i];
      if (value === undefined) break;
      const home = hashOf(value.id) & mask;
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        slots[hole] = value;
        hole = i;
      }
    }
    slots[hole] = undefined;
    this.#size--;
    // Give back the room a burst took once it is over.
    if (this.#slots.length > MIN_CAPACITY && this.#size * 8 < this.#slots.length) {
      this.#resize(this.#slots.length / 2);
    }
    return true;
  }

  /** The values stored now, in no particular order (a copy: safe to change the table). */
  values(): T[] {
    const values: T[] = [];
    for (const value of this.#slots) if (value !== undefined) values.push(value);
    return values;
  }

  /** Stores without growing; false when it replaced a value with the same id. */
  #put(value: T): boolean {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = hashOf(value.id) & mask; ; i = (i + 1) & mask) {
      const there = slots[i];
      if (there === undefined || there.id === value.id) {
        slots[i] = value;
        return there === undefined;
      }
    }
  }

  #resize(capacity: number): void {
    const old = this.#slots;
    this.#slots = new Array<T | undefined>(capacity).fill(undefined);
    this.#mask = capacity - 1;
    for (const value of old) if (value !== undefined) this.#put(value);
  }
}

/** A power of two, as every capacity. */
const MIN_CAPACITY = 32;

/**
 * FNV-1a over the last {@link HASHED_CHARS} UTF-16 code units. The ids stored are random
 * UUIDs, whose last 8 hex digits are already 32 random bits: hashing the other 28
 * characters would spread them no better, and this runs four times per call. The end of an
 * id is where ids of other shapes differ too (a counter, a time-ordered id). A looked-up key
 * shaped to collide only meets the random keys stored, so its probe stays short.
 */
function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  const start = id.length > HASHED_CHARS ? id.length - HASHED_CHARS : 0;
  for (let i = start; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

const HASHED_CHARS = 8;
