/** The services: the sidebar's list, and the selected queue's overview with its instances. */
import type { WireService } from '../api.js';
import { peak, rateChart } from './chart.js';
import { byId, fill, h, inputById } from './dom.js';
import { plural, since } from './format.js';
import { instanceKey, serviceOf, state } from './state.js';

export function renderSidebar(onSelect: (queue: string) => void): void {
  const filter = inputById('filter').value.trim().toLowerCase();
  const list = byId('services');
  const shown = state.services.filter(
    (service) =>
      filter === '' ||
      service.queue.toLowerCase().includes(filter) ||
      (service.service ?? '').toLowerCase().includes(filter),
  );
  fill(
    list,
    ...shown.map((service) =>
      h(
        'li',
        {},
        h(
          'button',
          {
            class: `service${service.queue === state.queue ? ' selected' : ''}`,
            'data-queue': service.queue,
            type: 'button',
            onclick: () => onSelect(service.queue),
          },
          h('span', { class: 'queue' }, service.queue),
          h(
            'span',
            { class: 'meta muted' },
            `${service.service ?? 'plain handler'} · ${plural(service.instances.length, 'instance')} · ${plural(service.methods.length, 'method')}`,
            service.consistent ? null : h('span', { class: 'badge warn' }, 'differ'),
          ),
        ),
      ),
    ),
  );
  if (shown.length === 0) {
    list.append(
      h(
        'li',
        { class: 'muted' },
        state.services.length === 0 ? 'No rabbit-rpc service answered.' : 'No match.',
      ),
    );
  }
}

export function renderOverview(): void {
  const overview = document.getElementById('overview');
  if (overview === null || state.queue === undefined) return;
  const service = serviceOf(state.queue);
  const series = state.series.get(state.queue) ?? [];
  const now = series[series.length - 1]?.rate ?? 0;
  fill(
    overview,
    h(
      'div',
      { class: 'title' },
      h('h2', {}, state.queue),
      service?.service === undefined
        ? h('span', { class: 'badge' }, service ? 'plain handler' : 'not described')
        : h('span', { class: 'badge info' }, `service ${service.service}`),
      service && !service.consistent
        ? h('span', { class: 'badge warn' }, 'instances describe different methods')
        : null,
    ),
    service === undefined
      ? h(
          'p',
          { class: 'muted' },
          'No rabbit-rpc server of this queue answered the last discovery: calls go as raw JSON.',
        )
      : null,
    service
      ? h(
          'div',
          { class: 'rate' },
          h(
            'div',
            { class: 'rate-label' },
            h('b', { id: 'rate-now' }, `${now.toFixed(1)} calls/s`),
            h('span', { class: 'muted' }, ` · peak ${peak(series).toFixed(1)}/s, last 3 min`),
          ),
          rateChart(series),
        )
      : null,
    service ? instancesTable(service) : null,
  );
}

function instancesTable(service: WireService): HTMLElement {
  return h(
    'table',
    { id: 'instances' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['instance', 'version', 'up', 'in flight', 'calls', 'calls/s', 'errors', 'expired'].map(
          (name) => h('th', {}, name),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      ...service.instances.map((instance) => {
        const rate = state.instanceRates.get(instanceKey(service.queue, instance));
        const errors = Object.entries(instance.counters.errors);
        return h(
          'tr',
          { 'data-instance': instance.instance },
          h('td', { class: 'mono' }, instance.instance),
          h('td', {}, `${instance.library.name} ${instance.library.version}`),
          h('td', { title: instance.startedAt }, since(instance.startedAt)),
          h(
            'td',
            { class: 'inflight' },
            `${instance.inFlight}/${instance.prefetch}`,
            h('meter', { min: 0, max: instance.prefetch, value: instance.inFlight }),
          ),
          h('td', { class: 'num calls' }, instance.counters.calls),
          h('td', { class: 'num' }, rate === undefined ? '–' : rate.toFixed(1)),
          h(
            'td',
            { class: 'errors' },
            errors.length === 0 ? h('span', { class: 'muted' }, '0') : null,
            ...errors.map(([code, count]) => h('span', { class: 'badge err' }, `${code} ${count}`)),
          ),
          h('td', { class: 'num' }, instance.counters.expired),
        );
      }),
    ),
  );
}
