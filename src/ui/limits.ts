/** What a ui server allows: its defaults, and the slots that bound the calls it runs at once. */
import { RpcError } from '../index.js';
import type { UiLimits } from './api.js';

/** The bounds of a ui server unless told otherwise. */
export const UI_DEFAULT_LIMITS: UiLimits = {
  maxBodyBytes: 1024 * 1024,
  maxJsonDepth: 64,
  maxCalls: 32,
  maxStreams: 8,
  maxTimeoutMs: 600_000,
};
/** The deadline of a call from the page that gives none. */
export const UI_DEFAULT_TIMEOUT_MS = 10_000;
/** How often the page asks for the services. */
export const UI_REFRESH_MS = 3_000;

/** Counts the calls and the streams in flight, each up to its limit. */
export class Slots {
  readonly #limits: UiLimits;
  #calls = 0;
  #streams = 0;

  constructor(limits: UiLimits) {
    this.#limits = limits;
  }

  /** Takes one of the call or stream slots; RESOURCE_EXHAUSTED when none is free. */
  take(kind: 'calls' | 'streams'): () => void {
    const max = kind === 'calls' ? this.#limits.maxCalls : this.#limits.maxStreams;
    const inUse = kind === 'calls' ? this.#calls : this.#streams;
    if (inUse >= max) {
      throw new RpcError(
        'RESOURCE_EXHAUSTED',
        `${max} ${kind} are in flight already, the most this server runs at once`,
        { details: { max } },
      );
    }
    if (kind === 'calls') this.#calls++;
    else this.#streams++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (kind === 'calls') this.#calls--;
      else this.#streams--;
    };
  }
}
