/** The last calls made from the page, kept in this browser (localStorage), newest first. */
export interface HistoryEntry {
  readonly id: string;
  /** Epoch ms. */
  readonly at: number;
  readonly queue: string;
  readonly method?: string;
  readonly mode: CallMode;
  /** The request as JSON text, as it was sent. */
  readonly request: string;
  readonly timeoutMs: number;
  /** OK, or the error code. */
  readonly outcome: string;
  readonly latencyMs: number;
}

export type CallMode = 'call' | 'stream' | 'broadcast';

const KEY = 'rabbit-rpc-ui.history';
const MAX_ENTRIES = 50;
/** Requests larger than this are not kept (localStorage holds a few MB per site). */
const MAX_REQUEST_CHARS = 64 * 1024;

export function loadHistory(): HistoryEntry[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(KEY) ?? '[]');
    return Array.isArray(parsed) ? (parsed as HistoryEntry[]).filter(isEntry) : [];
  } catch {
    return [];
  }
}

export function addToHistory(entry: Omit<HistoryEntry, 'id'>): HistoryEntry[] {
  if (entry.request.length > MAX_REQUEST_CHARS) return loadHistory();
  const entries = [
    { ...entry, id: `${entry.at}-${Math.random().toString(36).slice(2, 8)}` },
    ...loadHistory(),
  ].slice(0, MAX_ENTRIES);
  save(entries);
  return entries;
}

export function clearHistory(): void {
  save([]);
}

function save(entries: readonly HistoryEntry[]): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(entries));
  } catch {
    // Storage full or disabled: the history is a convenience.
  }
}

function isEntry(value: unknown): value is HistoryEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return (
    typeof entry['id'] === 'string' &&
    typeof entry['queue'] === 'string' &&
    typeof entry['request'] === 'string' &&
    typeof entry['timeoutMs'] === 'number' &&
    (entry['mode'] === 'call' || entry['mode'] === 'stream' || entry['mode'] === 'broadcast')
  );
}
