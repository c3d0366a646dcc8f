import type {
  ApiError,
  BroadcastOutcome,
  CallOutcome,
  InfoResponse,
  ServicesResponse,
  WireInstance,
  WireMethod,
  WireSchema,
  WireService,
} from '../api.js';
import { peak, rateChart, type RatePoint } from './chart.js';
import { ApiClient, ApiFailure } from './client.js';
import { byId, fill, h, inputById, pretty } from './dom.js';
import { requestEditor, type RequestEditor } from './form.js';
import {
  addToHistory,
  clearHistory,
  loadHistory,
  type CallMode,
  type HistoryEntry,
} from './history.js';

/** Points kept per chart: three minutes at one refresh every 3 s. */
const SERIES_POINTS = 60;
/** Stream items shown at most; older ones are dropped from the page (counted). */
const MAX_SHOWN_ITEMS = 500;
const RAW = '\u0000raw';

const TOKEN_KEY = 'rabbit-rpc-ui.token';

const state = {
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

/** The token: from the address's fragment (then removed from the address bar), else this tab's. */
function takeToken(): string {
  const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (match?.[1] !== undefined) {
    sessionStorage.setItem(TOKEN_KEY, match[1]);
    history.replaceState(null, '', location.pathname);
    return match[1];
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

const api = new ApiClient(takeToken());

async function start(): Promise<void> {
  try {
    state.info = await api.get<InfoResponse>('/api/info');
  } catch (error) {
    showFatal(error);
    return;
  }
  byId('broker').textContent = `${state.info.broker} · rabbit-rpc ${state.info.version}`;
  byId('filter').addEventListener('input', renderSidebar);
  inputById('live').addEventListener('change', (event) => {
    if ((event.target as HTMLInputElement).checked) void refresh();
    else clearTimeout(state.timer);
  });
  byId('raw-queue').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = inputById('raw-queue-name').value.trim();
    if (name !== '') select(name, RAW);
  });
  await refresh();
}

async function refresh(): Promise<void> {
  clearTimeout(state.timer);
  const status = byId('status');
  try {
    const answer = await api.get<ServicesResponse>('/api/services');
    state.services = [...answer.services];
    updateRates(answer);
    status.textContent = `${answer.services.length} services · updated ${new Date(answer.at).toLocaleTimeString()}`;
    status.className = 'muted';
    renderSidebar();
    renderOverview();
  } catch (error) {
    status.textContent = `refresh failed: ${messageOf(error)}`;
    status.className = 'bad';
    if (error instanceof ApiFailure && error.status === 401) {
      showFatal(error);
      return;
    }
  }
  if (inputById('live').checked && !state.stopped) {
    state.timer = setTimeout(() => void refresh(), state.info?.refreshMs ?? 3_000);
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

function instanceKey(queue: string, instance: WireInstance): string {
  return `${queue}\u0000${instance.instance}`;
}

function renderSidebar(): void {
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
            onclick: () => select(service.queue),
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

function select(queue: string, method?: string): void {
  const service = serviceOf(queue);
  state.queue = queue;
  state.method = method ?? service?.methods[0]?.name ?? RAW;
  renderSidebar();
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
  renderMethods();
  renderComposer();
  renderHistory();
}

function instancesOf(queue: string): { max?: number } {
  const count = serviceOf(queue)?.instances.length ?? 0;
  return count > 0 ? { max: count } : {};
}

function serviceOf(queue: string | undefined): WireService | undefined {
  return state.services.find((service) => service.queue === queue);
}

function methodOf(service: WireService | undefined, name: string): WireMethod | undefined {
  return name === RAW ? undefined : service?.methods.find((method) => method.name === name);
}

function renderOverview(): void {
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

function renderMethods(): void {
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
              onclick: () => pickMethod(method.name),
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
            onclick: () => pickMethod(RAW),
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

function pickMethod(name: string): void {
  state.method = name;
  renderMethods();
  renderComposer();
}

function renderComposer(text?: string, mode?: CallMode, timeoutMs?: number): void {
  const section = document.getElementById('composer');
  if (section === null || state.queue === undefined) return;
  const service = serviceOf(state.queue);
  const method = methodOf(service, state.method);
  const editor = requestEditor(method?.input, text);
  state.editor = editor;
  const modeSelect = h(
    'select',
    { id: 'mode', 'aria-label': 'kind of call' },
    ...(['call', 'stream', 'broadcast'] as const).map((name) =>
      h('option', { value: name, selected: name === (mode ?? 'call') }, name),
    ),
  );
  const timeout = h('input', {
    id: 'timeout',
    type: 'number',
    min: 1,
    max: state.info?.limits.maxTimeoutMs ?? 600_000,
    step: 1,
    value: timeoutMs ?? state.info?.defaultTimeoutMs ?? 10_000,
  });
  fill(
    section,
    h(
      'h3',
      {},
      method === undefined ? 'Raw call' : `Call ${method.name}`,
      method?.stream ? h('span', { class: 'badge info' }, 'streamed reply') : null,
    ),
    method === undefined
      ? h(
          'p',
          { class: 'muted' },
          'Any JSON, sent to the queue as it is (no method): call, stream, or broadcast to every instance.',
        )
      : null,
    editor.element,
    h(
      'div',
      { class: 'row controls' },
      method === undefined ? h('label', {}, 'kind ', modeSelect) : null,
      h('label', {}, 'timeout ', timeout, ' ms'),
      h(
        'button',
        { id: 'send', type: 'button', class: 'primary', onclick: () => void send() },
        'Send',
      ),
      h(
        'button',
        { id: 'stop', type: 'button', disabled: true, onclick: () => state.running?.abort() },
        'Stop',
      ),
    ),
  );
}

function currentMode(): CallMode {
  const method = methodOf(serviceOf(state.queue), state.method);
  if (method !== undefined) return method.stream ? 'stream' : 'call';
  const select = document.getElementById('mode') as HTMLSelectElement | null;
  const value = select?.value;
  return value === 'stream' || value === 'broadcast' ? value : 'call';
}

async function send(): Promise<void> {
  const queue = state.queue;
  const editor = state.editor;
  if (queue === undefined || editor === undefined || state.running !== undefined) return;
  const result = byId('result');
  const parsed = editor.read();
  if (!parsed.ok) {
    fill(
      result,
      h('p', { class: 'bad' }, `Not sent: the request is not JSON (${parsed.message}).`),
    );
    return;
  }
  const timeoutMs = Number(inputById('timeout').value);
  const max = state.info?.limits.maxTimeoutMs ?? 600_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > max) {
    fill(result, h('p', { class: 'bad' }, `Not sent: the timeout must be 1 to ${max} ms.`));
    return;
  }
  const method = state.method === RAW ? undefined : state.method;
  const mode = currentMode();
  const body = {
    queue,
    ...(method === undefined ? {} : { method }),
    request: parsed.value,
    timeoutMs,
  };
  const controller = new AbortController();
  state.running = controller;
  setRunning(true);
  const record = (outcome: string, latencyMs: number): void => {
    state.history = addToHistory({
      at: Date.now(),
      queue,
      ...(method === undefined ? {} : { method }),
      mode,
      request: parsed.text,
      timeoutMs,
      outcome,
      latencyMs,
    });
    renderHistory();
  };
  const started = performance.now();
  try {
    if (mode === 'stream') await runStream(body, controller.signal, record);
    else if (mode === 'broadcast') {
      fill(result, h('p', { class: 'muted' }, 'Broadcasting…'));
      const outcome = await api.post<BroadcastOutcome>(
        '/api/broadcast',
        // Done once every instance the last discovery saw has answered.
        { queue, request: parsed.value, timeoutMs, ...instancesOf(queue) },
        controller.signal,
      );
      showBroadcast(outcome);
      const failed = outcome.replies.find((row) => !row.ok);
      record(
        outcome.replies.length === 0 ? 'NO REPLY' : failed?.ok === false ? failed.error.code : 'OK',
        outcome.latencyMs,
      );
    } else {
      fill(result, h('p', { class: 'muted' }, 'Calling…'));
      const outcome = await api.post<CallOutcome>('/api/call', body, controller.signal);
      showCall(outcome);
      record(outcome.ok ? 'OK' : outcome.error.code, outcome.latencyMs);
    }
  } catch (error) {
    if (!controller.signal.aborted) {
      const apiError: ApiError =
        error instanceof ApiFailure
          ? error.error
          : { code: 'UNAVAILABLE', message: messageOf(error) };
      const latencyMs = performance.now() - started;
      showCall({ ok: false, error: apiError, latencyMs });
      record(apiError.code, latencyMs);
    }
  } finally {
    state.running = undefined;
    setRunning(false);
  }
}

function setRunning(running: boolean): void {
  const sendButton = document.getElementById('send') as HTMLButtonElement | null;
  const stopButton = document.getElementById('stop') as HTMLButtonElement | null;
  if (sendButton) sendButton.disabled = running;
  if (stopButton) stopButton.disabled = !running;
}

async function runStream(
  body: object,
  signal: AbortSignal,
  record: (outcome: string, latencyMs: number) => void,
): Promise<void> {
  const result = byId('result');
  const summary = h('div', { class: 'status' }, h('span', { class: 'badge info' }, 'streaming'));
  const items = h('ol', { class: 'items' });
  const dropped = h('p', { class: 'muted' });
  fill(result, summary, dropped, items);
  let count = 0;
  const started = performance.now();
  try {
    for await (const event of api.stream(body, signal)) {
      if (event.event === 'item') {
        count = event.data.seq;
        items.append(
          h(
            'li',
            { 'data-seq': event.data.seq },
            h(
              'span',
              { class: 'seq muted' },
              `#${event.data.seq} +${event.data.atMs.toFixed(0)} ms`,
            ),
            h('code', {}, JSON.stringify(event.data.item)),
          ),
        );
        if (items.childElementCount > MAX_SHOWN_ITEMS) {
          items.firstElementChild?.remove();
          dropped.textContent = `older items are not shown (the page keeps the last ${MAX_SHOWN_ITEMS})`;
        }
        fill(
          summary,
          h('span', { class: 'badge info' }, 'streaming'),
          h('span', { class: 'count' }, ` ${plural(count, 'item')}`),
        );
      } else {
        const end = event.data;
        fill(
          summary,
          end.error === undefined
            ? h('span', { class: 'badge ok outcome' }, 'OK')
            : h('span', { class: 'badge err outcome' }, end.error.code),
          h('span', { class: 'count' }, ` ${plural(end.count, 'item')}`),
          h('span', { class: 'latency muted' }, ` in ${ms(end.latencyMs)}`),
          end.error === undefined ? null : h('p', { class: 'message' }, end.error.message),
          end.error?.details === undefined
            ? null
            : h('pre', { class: 'details' }, pretty(end.error.details)),
        );
        record(end.error?.code ?? 'OK', end.latencyMs);
      }
    }
  } catch (error) {
    if (!signal.aborted) throw error;
    const latencyMs = performance.now() - started;
    fill(
      summary,
      h('span', { class: 'badge warn outcome' }, 'STOPPED'),
      h('span', { class: 'count' }, ` after ${plural(count, 'item')}`),
      h('span', { class: 'latency muted' }, ` in ${ms(latencyMs)} (cancelled on the server)`),
    );
    record('CANCELLED', latencyMs);
  }
}

function showCall(outcome: CallOutcome): void {
  const result = byId('result');
  if (outcome.ok) {
    fill(
      result,
      h(
        'div',
        { class: 'status' },
        h('span', { class: 'badge ok outcome' }, 'OK'),
        h('span', { class: 'latency muted' }, ` ${ms(outcome.latencyMs)}`),
        outcome.binary ? h('span', { class: 'muted' }, ' · bytes, shown as base64') : null,
      ),
      h('pre', { class: 'reply' }, pretty(outcome.reply)),
    );
    return;
  }
  fill(
    result,
    h(
      'div',
      { class: 'status' },
      h('span', { class: 'badge err outcome' }, outcome.error.code),
      h('span', { class: 'latency muted' }, ` ${ms(outcome.latencyMs)}`),
    ),
    h('p', { class: 'message' }, outcome.error.message),
    outcome.error.details === undefined
      ? null
      : h(
          'div',
          {},
          h('h4', {}, 'details'),
          h('pre', { class: 'details' }, pretty(outcome.error.details)),
        ),
  );
}

function showBroadcast(outcome: BroadcastOutcome): void {
  fill(
    byId('result'),
    h(
      'div',
      { class: 'status' },
      h(
        'span',
        { class: 'badge info outcome' },
        plural(outcome.replies.length, 'reply', 'replies'),
      ),
      h('span', { class: 'latency muted' }, ` ${ms(outcome.latencyMs)}`),
    ),
    outcome.replies.length === 0
      ? h(
          'p',
          { class: 'muted' },
          'No instance answered: nothing serves this queue with rabbit-rpc.',
        )
      : h(
          'table',
          { class: 'broadcast' },
          h(
            'thead',
            {},
            h('tr', {}, h('th', {}, 'instance'), h('th', {}, 'outcome'), h('th', {}, 'reply')),
          ),
          h(
            'tbody',
            {},
            ...outcome.replies.map((row) =>
              h(
                'tr',
                { 'data-instance': row.instance },
                h('td', { class: 'mono' }, row.instance),
                h(
                  'td',
                  {},
                  row.ok
                    ? h('span', { class: 'badge ok' }, 'OK')
                    : h('span', { class: 'badge err' }, row.error.code),
                ),
                h('td', {}, h('code', {}, row.ok ? JSON.stringify(row.reply) : row.error.message)),
              ),
            ),
          ),
        ),
  );
}

function renderHistory(): void {
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
                renderHistory();
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
                    { type: 'button', class: 'small', onclick: () => load(entry) },
                    'Load',
                  ),
                  h(
                    'button',
                    { type: 'button', class: 'small rerun', onclick: () => load(entry, true) },
                    'Run again',
                  ),
                ),
              ),
            ),
          ),
        ),
  );
}

/** Puts a history entry back in the composer; with `run`, sends it too. */
function load(entry: HistoryEntry, run = false): void {
  if (state.queue !== entry.queue) select(entry.queue, entry.method ?? RAW);
  else pickMethod(entry.method ?? RAW);
  renderComposer(entry.request, entry.mode, entry.timeoutMs);
  if (run) void send();
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

function since(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86400)
    return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d`;
}

function ms(value: number): string {
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

function clip(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

void start();
