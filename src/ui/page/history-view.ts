/** The history table: the last calls made from this browser, to load or run again. */
import { fill, h } from './dom.js';
import { clip, ms } from './format.js';
import { clearHistory, type HistoryEntry } from './history.js';
import { state } from './state.js';

export function renderHistory(onLoad: (entry: HistoryEntry, run: boolean) => void): void {
  const section = document.getElementById('history');
  if (section === null) return;
  fill(
    section,
    h(
      'div',
      { class: 'title' },
      h('h3', {}, 'History'),
      h('span', { class: 'muted' }, 'the last 50 calls, kept in this browser'),
      state.history.length > 0
        ? h(
            'button',
            {
              type: 'button',
              class: 'small',
              onclick: () => {
                clearHistory();
                state.history = [];
                renderHistory(onLoad);
              },
            },
            'Clear',
          )
        : null,
    ),
    state.history.length === 0
      ? h('p', { class: 'muted' }, 'No calls yet.')
      : h(
          'table',
          { class: 'history' },
          h(
            'tbody',
            {},
            ...state.history.map((entry) =>
              h(
                'tr',
                {},
                h('td', { class: 'muted' }, new Date(entry.at).toLocaleTimeString()),
                h('td', { class: 'mono' }, entry.queue),
                h('td', {}, entry.method ?? h('span', { class: 'muted' }, entry.mode)),
                h('td', { class: 'mono request' }, clip(entry.request.replace(/\s+/g, ' '), 60)),
                h(
                  'td',
                  {},
                  h(
                    'span',
                    { class: `badge ${entry.outcome === 'OK' ? 'ok' : 'err'}` },
                    entry.outcome,
                  ),
                ),
                h('td', { class: 'num muted' }, ms(entry.latencyMs)),
                h(
                  'td',
                  {},
                  h(
                    'button',
                    { type: 'button', class: 'small', onclick: () => onLoad(entry, false) },
                    'Load',
                  ),
                  h(
                    'button',
                    { type: 'button', class: 'small rerun', onclick: () => onLoad(entry, true) },
                    'Run again',
                  ),
                ),
              ),
            ),
          ),
        ),
  );
}
