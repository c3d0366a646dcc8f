/**
 * The page of `rabbit-rpc ui`: starts it, and wires the views together (each view takes the
 * actions it triggers as callbacks, so that no view imports another).
 */
import type { InfoResponse } from '../api.js';
import { renderComposer, send } from './call-panel.js';
import { ApiFailure } from './client.js';
import { byId, fill, h, inputById } from './dom.js';
import { messageOf } from './format.js';
import type { CallMode, HistoryEntry } from './history.js';
import { renderHistory } from './history-view.js';
import { refresh, type LiveView } from './live.js';
import { renderMethods } from './method-view.js';
import { renderOverview, renderSidebar } from './services-view.js';
import { api } from './session.js';
import { RAW, serviceOf, state } from './state.js';

const showSidebar = (): void => renderSidebar(select);
const showHistory = (): void => renderHistory(load);
const showComposer = (text?: string, mode?: CallMode, timeoutMs?: number): void =>
  renderComposer(() => void send(showHistory), text, mode, timeoutMs);
const live: LiveView = {
  rendered: () => {
    showSidebar();
    renderOverview();
  },
  fatal: showFatal,
};

async function start(): Promise<void> {
  try {
    state.info = await api.get<InfoResponse>('/api/info');
  } catch (error) {
    showFatal(error);
    return;
  }
  byId('broker').textContent = `${state.info.broker} · rabbit-rpc ${state.info.version}`;
  byId('filter').addEventListener('input', showSidebar);
  inputById('live').addEventListener('change', (event) => {
    if ((event.target as HTMLInputElement).checked) void refresh(live);
    else clearTimeout(state.timer);
  });
  byId('raw-queue').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = inputById('raw-queue-name').value.trim();
    if (name !== '') select(name, RAW);
  });
  await refresh(live);
}

function select(queue: string, method?: string): void {
  const service = serviceOf(queue);
  state.queue = queue;
  state.method = method ?? service?.methods[0]?.name ?? RAW;
  showSidebar();
  const main = byId('main');
  fill(
    main,
    h('section', { id: 'overview', class: 'card' }),
    h(
      'div',
      { class: 'columns' },
      h('section', { id: 'methods', class: 'card' }),
      h(
        'div',
        { class: 'stack' },
        h('section', { id: 'composer', class: 'card' }),
        h('section', { id: 'result', class: 'card' }, h('p', { class: 'muted' }, 'No call yet.')),
      ),
    ),
    h('section', { id: 'history', class: 'card' }),
  );
  renderOverview();
  renderMethods(pickMethod);
  showComposer();
  showHistory();
}

function pickMethod(name: string): void {
  state.method = name;
  renderMethods(pickMethod);
  showComposer();
}

/** Puts a history entry back in the composer; with `run`, sends it too. */
function load(entry: HistoryEntry, run = false): void {
  if (state.queue !== entry.queue) select(entry.queue, entry.method ?? RAW);
  else pickMethod(entry.method ?? RAW);
  showComposer(entry.request, entry.mode, entry.timeoutMs);
  if (run) void send(showHistory);
}

function showFatal(error: unknown): void {
  state.stopped = true;
  const unauthenticated = error instanceof ApiFailure && error.status === 401;
  fill(
    byId('main'),
    h(
      'section',
      { class: 'card fatal' },
      h(
        'h2',
        {},
        unauthenticated ? 'This page has no valid token' : 'The ui server did not answer',
      ),
      h(
        'p',
        {},
        unauthenticated
          ? 'Open the address rabbit-rpc ui printed when it started (it ends with #token=…); each run has a new token.'
          : messageOf(error),
      ),
    ),
  );
}

void start();
