/** The command line of `bench`: load, duration or call count, warm-up, request. */
import { CONNECT_DEFAULTS } from '../index.js';
import type { PhaseLimit } from './bench-load.js';
import {
  integerValue,
  jsonRequest,
  MAX_TIMEOUT_MS,
  methodName,
  parse,
  queueName,
  stringValue,
  UsageError,
  type HelpArgs,
} from './args-parse.js';

export interface BenchArgs {
  readonly command: 'bench';
  /** The queue to call; undefined with `--echo`, which serves a temporary queue itself. */
  readonly queue: string | undefined;
  /** Serve an echo server on a temporary queue, on a second connection of this process. */
  readonly echo: boolean;
  /** The request every call sends. */
  readonly request: unknown;
  readonly url: string | undefined;
  /** Calls kept in flight. */
  readonly concurrency: number;
  /** How long the measured phase lasts. */
  readonly limit: PhaseLimit;
  /** Calls before the measured phase, not counted in its figures. */
  readonly warmupMs: number;
  readonly timeoutMs: number | undefined;
  readonly method: string | undefined;
  /** The result as one JSON object on stdout instead of the table. */
  readonly json: boolean;
}

/** `bench` without `--duration-ms` or `--calls`: a 10-second run. */
export const BENCH_DEFAULT_DURATION_MS = 10_000;
export const BENCH_DEFAULT_CONCURRENCY = 16;
export const BENCH_DEFAULT_WARMUP_MS = 1_000;
/** The request `bench` sends without `<json>` or `--payload-bytes`. */
export const BENCH_DEFAULT_REQUEST = null;

export function parseBench(args: string[]): BenchArgs | HelpArgs {
  const { values, positionals } = parse('bench', args, {
    url: { type: 'string' },
    echo: { type: 'boolean' },
    concurrency: { type: 'string', short: 'c' },
    'duration-ms': { type: 'string' },
    calls: { type: 'string', short: 'n' },
    'warmup-ms': { type: 'string' },
    'timeout-ms': { type: 'string' },
    method: { type: 'string' },
    'payload-bytes': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'bench' };
  const echo = values['echo'] === true;
  // With --echo the queue is a temporary one: the only argument left is the request.
  const [queue, json, ...extra] = echo ? [undefined, ...positionals] : positionals;
  if (!echo && queue === undefined) {
    throw new UsageError('bench needs a queue (or --echo to serve one itself)', 'bench');
  }
  if (extra.length > 0) {
    throw new UsageError(
      `unexpected argument "${extra.join(' ')}"` +
        (echo ? ' (with --echo, bench takes no queue: only a JSON request)' : ''),
      'bench',
    );
  }
  const payloadBytes = integerValue(
    'bench',
    '--payload-bytes',
    values['payload-bytes'],
    2,
    CONNECT_DEFAULTS.maxPayloadBytes,
  );
  if (payloadBytes !== undefined && json !== undefined) {
    throw new UsageError('give a JSON request or --payload-bytes, not both', 'bench');
  }
  const calls = integerValue('bench', '--calls', values['calls'], 1, Number.MAX_SAFE_INTEGER);
  const durationMs = integerValue(
    'bench',
    '--duration-ms',
    values['duration-ms'],
    1,
    MAX_TIMEOUT_MS,
  );
  if (calls !== undefined && durationMs !== undefined) {
    throw new UsageError('give --duration-ms or --calls, not both', 'bench');
  }
  let request: unknown = BENCH_DEFAULT_REQUEST;
  // A JSON string of exactly payloadBytes bytes: its quotes and ASCII letters.
  if (payloadBytes !== undefined) request = 'x'.repeat(payloadBytes - 2);
  else if (json !== undefined) request = jsonRequest(json, 'bench');
  return {
    command: 'bench',
    queue: queue === undefined ? undefined : queueName(queue, 'bench'),
    echo,
    request,
    url: stringValue(values['url']),
    concurrency:
      integerValue('bench', '--concurrency', values['concurrency'], 1, 100_000) ??
      BENCH_DEFAULT_CONCURRENCY,
    limit:
      calls === undefined ? { durationMs: durationMs ?? BENCH_DEFAULT_DURATION_MS } : { calls },
    warmupMs:
      integerValue('bench', '--warmup-ms', values['warmup-ms'], 0, MAX_TIMEOUT_MS) ??
      BENCH_DEFAULT_WARMUP_MS,
    timeoutMs: integerValue('bench', '--timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS),
    method: methodName(stringValue(values['method']), 'bench'),
    json: values['json'] === true,
  };
}
