/** The call panel: the request editor, the kind of call and its timeout, Send and Stop. */
import type { ApiError, BroadcastOutcome, CallOutcome } from '../api.js';
import { ApiFailure } from './client.js';
import { cliCommand } from './cli-command.js';
import { byId, fill, h, inputById } from './dom.js';
import { requestEditor } from './form.js';
import { messageOf } from './format.js';
import { addToHistory, type CallMode } from './history.js';
import { runStream, showBroadcast, showCall } from './results.js';
import { api } from './session.js';
import { instancesOf, methodOf, RAW, serviceOf, state } from './state.js';

export function renderComposer(
  onSend: () => void,
  text?: string,
  mode?: CallMode,
  timeoutMs?: number,
): void {
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
      h('button', { id: 'send', type: 'button', class: 'primary', onclick: onSend }, 'Send'),
      h(
        'button',
        { id: 'stop', type: 'button', disabled: true, onclick: () => state.running?.abort() },
        'Stop',
      ),
      h(
        'button',
        { id: 'copy-cli', type: 'button', onclick: () => void copyAsCli() },
        'Copy as CLI',
      ),
    ),
    h('p', { id: 'cli-line', class: 'muted', hidden: true }),
  );
}

/** Shows the equivalent `rabbit-rpc` command under the controls and copies it if it may. */
async function copyAsCli(): Promise<void> {
  const queue = state.queue;
  const parsed = state.editor?.read();
  if (queue === undefined || parsed === undefined) return;
  const line = byId('cli-line');
  line.hidden = false;
  if (!parsed.ok) {
    fill(line, h('span', { class: 'bad' }, `The request is not JSON (${parsed.message}).`));
    return;
  }
  const command = cliCommand({
    queue,
    method: state.method === RAW ? undefined : state.method,
    mode: currentMode(),
    request: parsed.value,
    timeoutMs: Number(inputById('timeout').value),
  });
  const code = h('code', { id: 'cli-command' }, command);
  fill(line, code);
  try {
    // Refused outside a secure context or without the browser's permission: then the
    // command stays on the page, selectable.
    await navigator.clipboard.writeText(command);
    line.append(h('span', { class: 'copied' }, ' copied'));
  } catch {
    line.append(h('span', {}, ' (select it to copy)'));
  }
}

function currentMode(): CallMode {
  const method = methodOf(serviceOf(state.queue), state.method);
  if (method !== undefined) return method.stream ? 'stream' : 'call';
  const select = document.getElementById('mode') as HTMLSelectElement | null;
  const value = select?.value;
  return value === 'stream' || value === 'broadcast' ? value : 'call';
}

/** Sends the composed request; `onRecorded` runs once its outcome is in the history. */
export async function send(onRecorded: () => void): Promise<void> {
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
    onRecorded();
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
