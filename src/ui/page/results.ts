/** A call's result on the page: a reply or an error, a broadcast's replies, a stream's items. */
import type { BroadcastOutcome, CallOutcome } from '../api.js';
import { byId, fill, h, pretty } from './dom.js';
import { ms, plural } from './format.js';
import { api } from './session.js';

/** Stream items shown at most; older ones are dropped from the page (counted). */
const MAX_SHOWN_ITEMS = 500;

export async function runStream(
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

export function showCall(outcome: CallOutcome): void {
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

export function showBroadcast(outcome: BroadcastOutcome): void {
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
