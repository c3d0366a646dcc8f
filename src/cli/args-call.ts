/** The command lines of `call` and `broadcast`: a queue and a JSON request. */
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

export interface CallArgs {
  readonly command: 'call';
  readonly queue: string;
  readonly request: unknown;
  readonly url: string | undefined;
  readonly timeoutMs: number | undefined;
  /** A service method: sent in the AMQP `type` property. */
  readonly method: string | undefined;
  /** Timing and AMQP properties on stderr. */
  readonly verbose: boolean;
  /** Ask for a streamed reply and print each item as it comes. */
  readonly stream: boolean;
  /** `--window`: the stream's flow-control window (only with `stream`). */
  readonly window: number | undefined;
  /** With `method`: check the request against the described input schema first (`--no-check` turns it off). */
  readonly check: boolean;
}

export interface BroadcastArgs {
  readonly command: 'broadcast';
  readonly queue: string;
  readonly request: unknown;
  readonly url: string | undefined;
  /** How long to collect replies; the library's default (2000 ms) when undefined. */
  readonly timeoutMs: number | undefined;
  /** Stop once this many instances have replied. */
  readonly max: number | undefined;
  /** One JSON array on stdout instead of a line per instance. */
  readonly json: boolean;
}

/** The library's bounds of `window` (StreamOptions) and `max` (BroadcastOptions). */
const MAX_STREAM_WINDOW = 10_000;
const MAX_BROADCAST_REPLIES = 1_000_000;

export function parseCall(args: string[]): CallArgs | HelpArgs {
  const { values, positionals } = parse('call', args, {
    url: { type: 'string' },
    'timeout-ms': { type: 'string' },
    method: { type: 'string' },
    verbose: { type: 'boolean', short: 'v' },
    stream: { type: 'boolean' },
    window: { type: 'string' },
    'no-check': { type: 'boolean' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'call' };
  const [queue, json, ...extra] = positionals;
  if (queue === undefined || json === undefined) {
    throw new UsageError('call needs a queue and a JSON request', 'call');
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra.join(' ')}"`, 'call');
  const stream = values['stream'] === true;
  const window = integerValue('call', '--window', values['window'], 1, MAX_STREAM_WINDOW);
  if (window !== undefined && !stream) {
    throw new UsageError('--window is for streamed replies: add --stream', 'call');
  }
  return {
    command: 'call',
    queue: queueName(queue, 'call'),
    request: jsonRequest(json, 'call'),
    url: stringValue(values['url']),
    timeoutMs: integerValue('call', '--timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS),
    method: methodName(stringValue(values['method']), 'call'),
    verbose: values['verbose'] === true,
    stream,
    window,
    check: values['no-check'] !== true,
  };
}

export function parseBroadcast(args: string[]): BroadcastArgs | HelpArgs {
  const { values, positionals } = parse('broadcast', args, {
    url: { type: 'string' },
    'timeout-ms': { type: 'string' },
    max: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'broadcast' };
  const [queue, json, ...extra] = positionals;
  if (queue === undefined || json === undefined) {
    throw new UsageError('broadcast needs a queue and a JSON request', 'broadcast');
  }
  if (extra.length > 0) {
    throw new UsageError(`unexpected argument "${extra.join(' ')}"`, 'broadcast');
  }
  return {
    command: 'broadcast',
    queue: queueName(queue, 'broadcast'),
    request: jsonRequest(json, 'broadcast'),
    url: stringValue(values['url']),
    timeoutMs: integerValue('broadcast', '--timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS),
    max: integerValue('broadcast', '--max', values['max'], 1, MAX_BROADCAST_REPLIES),
    json: values['json'] === true,
  };
}
