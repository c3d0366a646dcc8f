/** The selected queue's methods, and the chosen one's schemas and declared errors. */
import type { WireMethod, WireSchema } from '../api.js';
import { fill, h, pretty } from './dom.js';
import { methodOf, RAW, serviceOf, state } from './state.js';

export function renderMethods(onPick: (name: string) => void): void {
  const section = document.getElementById('methods');
  if (section === null) return;
  const service = serviceOf(state.queue);
  const methods = service?.methods ?? [];
  const selected = methodOf(service, state.method);
  fill(
    section,
    h('h3', {}, 'Methods'),
    h(
      'ul',
      { class: 'method-list' },
      ...methods.map((method) =>
        h(
          'li',
          {},
          h(
            'button',
            {
              type: 'button',
              class: `method${method.name === state.method ? ' selected' : ''}`,
              'data-method': method.name,
              onclick: () => onPick(method.name),
            },
            method.name,
            method.stream ? h('span', { class: 'badge info' }, 'stream') : null,
            method.idempotent ? h('span', { class: 'badge' }, 'idempotent') : null,
          ),
        ),
      ),
      h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: `method raw${state.method === RAW ? ' selected' : ''}`,
            'data-method': '',
            onclick: () => onPick(RAW),
          },
          'raw JSON to the queue',
        ),
      ),
    ),
    selected ? methodDetail(selected) : null,
  );
}

function methodDetail(method: WireMethod): HTMLElement {
  return h(
    'div',
    { class: 'schemas' },
    schemaBlock('input', method.input),
    schemaBlock(method.stream ? 'each item' : 'output', method.output),
    method.errors.length > 0
      ? h(
          'div',
          {},
          h('h4', {}, 'declared errors'),
          ...method.errors.map((error) =>
            h(
              'details',
              {},
              h('summary', {}, h('span', { class: 'badge err' }, error.code)),
              error.details === undefined
                ? h('p', { class: 'muted' }, 'no details schema')
                : h('pre', {}, pretty(error.details)),
            ),
          ),
        )
      : null,
  );
}

function schemaBlock(label: string, schema: WireSchema | undefined): HTMLElement {
  return h(
    'details',
    { open: true, class: `schema schema-${label.replace(' ', '-')}` },
    h('summary', {}, label),
    schema === undefined
      ? h('p', { class: 'muted' }, 'no schema (typeOnly, or none JSON Schema can express)')
      : h('pre', {}, pretty(schema)),
  );
}
