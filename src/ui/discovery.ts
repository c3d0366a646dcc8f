/** The services as the page reads them: one discovery at a time, shared by every request. */
import { performance } from 'node:perf_hooks';
import type { RpcConnection, ServiceDescription } from '../index.js';
import type { ServicesResponse, WireService } from './api.js';

const DISCOVERY_TIMEOUT_MS = 1_000;

export class SharedDiscovery {
  readonly #rpc: RpcConnection;
  readonly #signal: AbortSignal;
  #running: Promise<ServicesResponse> | undefined;

  /** `signal` (the server closing) ends a discovery in flight. */
  constructor(rpc: RpcConnection, signal: AbortSignal) {
    this.#rpc = rpc;
    this.#signal = signal;
  }

  /** Requests that come while one discovery runs get its answer; the next one asks again. */
  services(): Promise<ServicesResponse> {
    this.#running ??= (async () => {
      const started = performance.now();
      try {
        const services = await this.#rpc.services({
          timeoutMs: DISCOVERY_TIMEOUT_MS,
          signal: this.#signal,
        });
        return {
          services: services.map(wireService),
          at: Date.now(),
          tookMs: Math.round(performance.now() - started),
        };
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }
}

/** A service description as the page reads it (the same shape: checked by the compiler). */
function wireService(service: ServiceDescription): WireService {
  return service;
}
