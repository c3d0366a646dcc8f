/** Live refresh: the services every few seconds, and the call rates their counters give. */
import type { ServicesResponse, StateResponse } from '../api.js';
import { ApiFailure } from './client.js';
import { byId, inputById } from './dom.js';
import { messageOf, plural } from './format.js';
import { api } from './session.js';
import { instanceKey, state } from './state.js';

/** Points kept per chart: three minutes at one refresh every 3 s. */
const SERIES_POINTS = 60;

/** What a refresh updates on the page, and what it does when the token is refused. */
export interface LiveView {
  rendered(): void;
  fatal(error: unknown): void;
}

export async function refresh(view: LiveView): Promise<void> {
  clearTimeout(state.timer);
  await showConnection();
  const status = byId('status');
  try {
    const answer = await api.get<ServicesResponse>('/api/services');
    state.services = [...answer.services];
    updateRates(answer);
    status.textContent = `${answer.services.length} services · updated ${new Date(answer.at).toLocaleTimeString()}`;
    status.className = 'muted';
    view.rendered();
  } catch (error) {
    status.textContent = `refresh failed: ${messageOf(error)}`;
    status.className = 'bad';
    if (error instanceof ApiFailure && error.status === 401) {
      view.fatal(error);
      return;
    }
  }
  if (inputById('live').checked && !state.stopped) {
    state.timer = setTimeout(() => void refresh(view), state.info?.refreshMs ?? 3_000);
  }
}

/** Calls per second of each instance and each queue, from the counters of two refreshes. */
function updateRates(answer: ServicesResponse): void {
  for (const service of answer.services) {
    let total = 0;
    let known = false;
    for (const instance of service.instances) {
      const key = instanceKey(service.queue, instance);
      const before = state.lastCalls.get(key);
      const calls = instance.counters.calls;
      if (before !== undefined && answer.at > before.at) {
        const rate = (Math.max(0, calls - before.calls) * 1000) / (answer.at - before.at);
        state.instanceRates.set(key, rate);
        total += rate;
        known = true;
      }
      state.lastCalls.set(key, { at: answer.at, calls });
    }
    const series = state.series.get(service.queue) ?? [];
    series.push({ at: answer.at, rate: known ? total : 0 });
    state.series.set(service.queue, series.slice(-SERIES_POINTS));
  }
}

const STATE_BADGES: Readonly<Record<string, string>> = {
  connected: 'ok',
  blocked: 'warn',
  reconnecting: 'warn',
  closed: 'err',
};

/** The ui server's connection to the broker, in the header; never throws. */
async function showConnection(): Promise<void> {
  const badge = byId('connection');
  try {
    const { state: connection, reconnects } = await api.get<StateResponse>('/api/state');
    badge.textContent = connection;
    badge.className = `badge ${STATE_BADGES[connection] ?? 'warn'}`;
    badge.title =
      reconnects === 0
        ? "the ui server's connection to the broker"
        : `the ui server's connection to the broker; reconnected ${plural(reconnects, 'time')}`;
  } catch {
    badge.textContent = 'ui server unreachable';
    badge.className = 'badge err';
  }
}
