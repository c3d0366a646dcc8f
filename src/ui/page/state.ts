/** The page's state: what the last refresh saw, what is selected, the call running. */
import type { InfoResponse, WireInstance, WireMethod, WireService } from '../api.js';
import type { RatePoint } from './chart.js';
import type { RequestEditor } from './form.js';
import { loadHistory } from './history.js';

/** The method "name" of a raw call: JSON to the queue, no method. */
export const RAW = '\u0000raw';

export const state = {
  info: undefined as InfoResponse | undefined,
  services: [] as WireService[],
  queue: undefined as string | undefined,
  /** The selected method's name, or RAW. */
  method: RAW,
  lastCalls: new Map<string, { at: number; calls: number }>(),
  instanceRates: new Map<string, number>(),
  series: new Map<string, RatePoint[]>(),
  running: undefined as AbortController | undefined,
  editor: undefined as RequestEditor | undefined,
  history: loadHistory(),
  timer: undefined as ReturnType<typeof setTimeout> | undefined,
  stopped: false,
};

export function instanceKey(queue: string, instance: WireInstance): string {
  return `${queue}\u0000${instance.instance}`;
}

export function instancesOf(queue: string): { max?: number } {
  const count = serviceOf(queue)?.instances.length ?? 0;
  return count > 0 ? { max: count } : {};
}

export function serviceOf(queue: string | undefined): WireService | undefined {
  return state.services.find((service) => service.queue === queue);
}

export function methodOf(service: WireService | undefined, name: string): WireMethod | undefined {
  return name === RAW ? undefined : service?.methods.find((method) => method.name === name);
}
