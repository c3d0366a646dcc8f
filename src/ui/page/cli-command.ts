/** The `rabbit-rpc` command line that makes the same call as the page: for scripts and tickets. */
import type { CallMode } from './history.js';

export interface CliCall {
  readonly queue: string;
  readonly method: string | undefined;
  readonly mode: CallMode;
  readonly request: unknown;
  readonly timeoutMs: number;
}

/**
 * The command, for a POSIX shell. It names no broker: the URL holds the credentials, which
 * the page never has (add `--url`, or rely on the CLI's default).
 */
export function cliCommand(call: CliCall): string {
  const words = [
    'rabbit-rpc',
    call.mode === 'broadcast' ? 'broadcast' : 'call',
    call.queue,
    JSON.stringify(call.request),
  ];
  if (call.method !== undefined && call.mode !== 'broadcast') words.push('--method', call.method);
  if (call.mode === 'stream') words.push('--stream');
  words.push('--timeout-ms', String(call.timeoutMs));
  return words.map(shellWord).join(' ');
}

/** A word as a shell reads it: as it is when safe, else in single quotes. */
function shellWord(word: string): string {
  return /^[\w./:@%+=,-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
