import { Buffer } from 'node:buffer';
import { parseArgs } from 'node:util';
import { CONNECT_DEFAULTS } from '../index.js';
import { closestName } from '../option-names.js';
import type { PhaseLimit } from './bench-load.js';

/** The commands of the `rabbit-rpc` CLI. */
export const COMMANDS = [
  'call',
  'broadcast',
  'ping',
  'serve',
  'bench',
  'demo',
  'services',
  'describe',
  'asyncapi',
  'ui',
] as const;
export type CommandName = (typeof COMMANDS)[number];

/** A command line the user got wrong: exit code 2, nothing was sent anywhere. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** The command whose help explains the mistake, if any. */
    readonly command?: CommandName,
  ) {
    super(message);
  }
}

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

export interface ServicesArgs {
  readonly command: 'services';
  readonly url: string | undefined;
  /** How long to collect answers; the library's default (1000 ms) when undefined. */
  readonly timeoutMs: number | undefined;
  /** The descriptions as JSON on stdout instead of the table. */
  readonly json: boolean;
}

export interface DescribeArgs {
  readonly command: 'describe';
  readonly queue: string;
  readonly url: string | undefined;
  readonly timeoutMs: number | undefined;
  readonly json: boolean;
}

export interface AsyncApiArgs {
  readonly command: 'asyncapi';
  /** A module whose exports include contracts; undefined with `--from-broker`. */
  readonly module: string | undefined;
  readonly fromBroker: boolean;
  /** Where to write the document; stdout when undefined. */
  readonly out: string | undefined;
  readonly title: string | undefined;
  readonly url: string | undefined;
  readonly timeoutMs: number | undefined;
}

export interface UiArgs {
  readonly command: 'ui';
  readonly url: string | undefined;
  /** The address to listen on; loopback (127.0.0.1) unless given. */
  readonly host: string | undefined;
  /** The port; undefined: 7373 or the next free one. */
  readonly port: number | undefined;
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

export interface PingArgs {
  readonly command: 'ping';
  /** A queue name, or a service name whose queue is `rpc.<name>`. */
  readonly target: string;
  readonly url: string | undefined;
  readonly timeoutMs: number | undefined;
  /** One line of JSON on stdout instead of the sentence. */
  readonly json: boolean;
}

export type HandlerSource =
  { readonly kind: 'echo' } | { readonly kind: 'module'; readonly path: string };

export interface ServeArgs {
  readonly command: 'serve';
  readonly queue: string;
  readonly handler: HandlerSource;
  readonly prefetch: number | undefined;
  readonly url: string | undefined;
  /** Exit on a lost connection instead of reconnecting (for supervisors that restart it). */
  readonly reconnect: boolean;
}

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

export interface DemoArgs {
  readonly command: 'demo';
  readonly url: string | undefined;
}

export interface HelpArgs {
  readonly command: 'help';
  readonly topic: CommandName | undefined;
  /**
   * `rabbit-rpc` with nothing after it: the help goes to stderr and the exit code is 2, so
   * that a script whose command came out empty still fails.
   */
  readonly missingCommand?: true;
}

export interface VersionArgs {
  readonly command: 'version';
}

export type ParsedCommandLine =
  | CallArgs
  | BroadcastArgs
  | PingArgs
  | ServeArgs
  | BenchArgs
  | DemoArgs
  | ServicesArgs
  | DescribeArgs
  | AsyncApiArgs
  | UiArgs
  | HelpArgs
  | VersionArgs;

/** The largest delay a Node timer accepts; the library's upper bound for timeouts. */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** The library's bounds of `window` (StreamOptions) and `max` (BroadcastOptions). */
const MAX_STREAM_WINDOW = 10_000;
const MAX_BROADCAST_REPLIES = 1_000_000;

/**
 * Parses `process.argv.slice(2)`. Throws {@link UsageError} for anything malformed, before
 * any connection is made: bad JSON, bad numbers, unknown commands or flags.
 */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const [first, ...rest] = argv;
  if (first === undefined) return { command: 'help', topic: undefined, missingCommand: true };
  if (first === '--help' || first === '-h') return { command: 'help', topic: undefined };
  if (first === '--version' || first === '-v') return { command: 'version' };
  if (first === 'help') {
    const topic = rest[0];
    if (topic === undefined) return { command: 'help', topic: undefined };
    if (!isCommand(topic)) throw unknownCommand(topic);
    return { command: 'help', topic };
  }
  if (!isCommand(first)) {
    if (!first.startsWith('-')) throw unknownCommand(first);
    throw new UsageError(
      `unknown option ${first}: options go after the command, e.g. rabbit-rpc call <queue> <json> --timeout-ms 5000`,
    );
  }
  switch (first) {
    case 'call':
      return parseCall(rest);
    case 'broadcast':
      return parseBroadcast(rest);
    case 'ping':
      return parsePing(rest);
    case 'serve':
      return parseServe(rest);
    case 'bench':
      return parseBench(rest);
    case 'demo':
      return parseDemo(rest);
    case 'services':
      return parseServices(rest);
    case 'describe':
      return parseDescribe(rest);
    case 'asyncapi':
      return parseAsyncApi(rest);
    case 'ui':
      return parseUi(rest);
  }
}

function parseUi(args: string[]): UiArgs | HelpArgs {
  const { values, positionals } = parse('ui', args, {
    url: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'ui' };
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals.join(' ')}"`, 'ui');
  }
  const host = stringValue(values['host']);
  if (host !== undefined && !/^[A-Za-z0-9.:-]{1,253}$/.test(host)) {
    throw new UsageError(
      `--host must be an IP address or a host name (e.g. 0.0.0.0); got "${host}"`,
      'ui',
    );
  }
  return {
    command: 'ui',
    url: stringValue(values['url']),
    host,
    port: integerValue('ui', '--port', values['port'], 0, 65_535),
  };
}

function parseServices(args: string[]): ServicesArgs | HelpArgs {
  const { values, positionals } = parse('services', args, {
    url: { type: 'string' },
    'timeout-ms': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'services' };
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals.join(' ')}"`, 'services');
  }
  return {
    command: 'services',
    url: stringValue(values['url']),
    timeoutMs: integerValue('services', '--timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS),
    json: values['json'] === true,
  };
}

function parseDescribe(args: string[]): DescribeArgs | HelpArgs {
  const { values, positionals } = parse('describe', args, {
    url: { type: 'string' },
    'timeout-ms': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'describe' };
  const [queue, ...extra] = positionals;
  if (queue === undefined) throw new UsageError('describe needs a queue', 'describe');
  if (extra.length > 0) {
    throw new UsageError(`unexpected argument "${extra.join(' ')}"`, 'describe');
  }
  return {
    command: 'describe',
    queue: queueName(queue, 'describe'),
    url: stringValue(values['url']),
    timeoutMs: integerValue('describe', '--timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS),
    json: values['json'] === true,
  };
}

function parseAsyncApi(args: string[]): AsyncApiArgs | HelpArgs {
  const { values, positionals } = parse('asyncapi', args, {
    url: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'from-broker': { type: 'boolean' },
    out: { type: 'string' },
    title: { type: 'string' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'asyncapi' };
  const [module, ...extra] = positionals;
  const fromBroker = values['from-broker'] === true;
  if (extra.length > 0) {
    throw new UsageError(`unexpected argument "${extra.join(' ')}"`, 'asyncapi');
  }
  if ((module === undefined) === !fromBroker) {
    throw new UsageError('asyncapi needs a module of contracts, or --from-broker', 'asyncapi');
  }
  const out = stringValue(values['out']);
  if (out === '') throw new UsageError('--out needs a file name', 'asyncapi');
  return {
    command: 'asyncapi',
    module,
    fromBroker,
    out,
    title: stringValue(values['title']),
    url: stringValue(values['url']),
    timeoutMs: integerValue('asyncapi', '--timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS),
  };
}

function parseCall(args: string[]): CallArgs | HelpArgs {
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

function parseBroadcast(args: string[]): BroadcastArgs | HelpArgs {
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

function parsePing(args: string[]): PingArgs | HelpArgs {
  const { values, positionals } = parse('ping', args, {
    url: { type: 'string' },
    'timeout-ms': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'ping' };
  const [target, ...extra] = positionals;
  if (target === undefined) throw new UsageError('ping needs a queue or service name', 'ping');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra.join(' ')}"`, 'ping');
  return {
    command: 'ping',
    target: queueName(target, 'ping'),
    url: stringValue(values['url']),
    timeoutMs: integerValue('ping', '--timeout-ms', values['timeout-ms'], 1, MAX_TIMEOUT_MS),
    json: values['json'] === true,
  };
}

function parseServe(args: string[]): ServeArgs | HelpArgs {
  const { values, positionals } = parse('serve', args, {
    url: { type: 'string' },
    echo: { type: 'boolean' },
    module: { type: 'string' },
    prefetch: { type: 'string' },
    'no-reconnect': { type: 'boolean' },
  });
  if (values['help'] === true) return { command: 'help', topic: 'serve' };
  const [queue, ...extra] = positionals;
  if (queue === undefined) throw new UsageError('serve needs a queue', 'serve');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra.join(' ')}"`, 'serve');
  const echo = values['echo'] === true;
  const modulePath = stringValue(values['module']);
  if (echo === (modulePath !== undefined)) {
    throw new UsageError('serve needs exactly one of --echo or --module <file>', 'serve');
  }
  if (modulePath === '') throw new UsageError('--module needs a file', 'serve');
  return {
    command: 'serve',
    queue: queueName(queue, 'serve'),
    handler: modulePath === undefined ? { kind: 'echo' } : { kind: 'module', path: modulePath },
    prefetch: integerValue('serve', '--prefetch', values['prefetch'], 1, 65_535),
    url: stringValue(values['url']),
    reconnect: values['no-reconnect'] !== true,
  };
}

/** `bench` without `--duration-ms` or `--calls`: a 10-second run. */
export const BENCH_DEFAULT_DURATION_MS = 10_000;
export const BENCH_DEFAULT_CONCURRENCY = 16;
export const BENCH_DEFAULT_WARMUP_MS = 1_000;
/** The request `bench` sends without `<json>` or `--payload-bytes`. */
export const BENCH_DEFAULT_REQUEST = null;

function parseBench(args: string[]): BenchArgs | HelpArgs {
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

function parseDemo(args: string[]): DemoArgs | HelpArgs {
  const { values, positionals } = parse('demo', args, { url: { type: 'string' } });
  if (values['help'] === true) return { command: 'help', topic: 'demo' };
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals.join(' ')}"`, 'demo');
  }
  return { command: 'demo', url: stringValue(values['url']) };
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type ParsedValues = Record<string, string | boolean | undefined>;

function parse(
  command: CommandName,
  args: string[],
  options: OptionSpec,
): { values: ParsedValues; positionals: string[] } {
  const spec: OptionSpec = { ...options, help: { type: 'boolean', short: 'h' } };
  // Not strict: parseArgs' own messages quote its internals ("argument is ambiguous" for
  // `--timeout-ms -5`). Its tokens are checked here instead, in the CLI's words.
  const { tokens, positionals } = parseArgs({
    args,
    options: spec,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const values: ParsedValues = {};
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(spec, token.name) ? spec[token.name] : undefined;
    if (option === undefined) throw unknownFlag(command, token.rawName, spec);
    const flag = `--${token.name}`;
    if (option.type === 'string' && token.value === undefined) {
      throw new UsageError(`${flag} needs a value: ${flag} <${valueName(token.name)}>`, command);
    }
    if (option.type === 'boolean' && token.inlineValue === true) {
      throw new UsageError(`${flag} takes no value: write ${flag} alone`, command);
    }
    values[token.name] = token.value ?? true;
  }
  return { values, positionals };
}

/** What the value of a flag is, for messages: `--timeout-ms <n>`, `--url <url>`. */
const VALUE_NAMES: Readonly<Record<string, string>> = {
  url: 'url',
  module: 'file',
  method: 'name',
  host: 'address',
};

function valueName(flag: string): string {
  return VALUE_NAMES[flag] ?? 'n';
}

function unknownFlag(command: CommandName, raw: string, spec: OptionSpec): UsageError {
  if (/^-\d/.test(raw)) {
    return new UsageError(
      `${raw} is read as an option: put a JSON value that starts with "-" after --, e.g. rabbit-rpc ${command} <queue> -- ${raw}`,
      command,
    );
  }
  const flags = Object.keys(spec).map((name) => `--${name}`);
  const suggestion = closestName(raw.startsWith('--') ? raw : `--${raw.replace(/^-/, '')}`, flags);
  const hint =
    suggestion === undefined
      ? `; its options are ${flags.join(', ')}`
      : `: did you mean ${suggestion}?`;
  return new UsageError(`${command} has no option ${raw}${hint}`, command);
}

function unknownCommand(name: string): UsageError {
  const suggestion = closestName(name, COMMANDS);
  const hint =
    suggestion === undefined
      ? `; the commands are ${COMMANDS.join(', ')}`
      : `: did you mean ${suggestion}?`;
  return new UsageError(`unknown command "${name}"${hint}`);
}

function isCommand(name: string): name is CommandName {
  return (COMMANDS as readonly string[]).includes(name);
}

function stringValue(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function integerValue(
  command: CommandName,
  flag: string,
  value: string | boolean | undefined,
  min: number,
  max: number,
): number | undefined {
  if (typeof value !== 'string') return undefined;
  const number = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) {
    throw new UsageError(
      `${flag} must be an integer from ${min} to ${max}; got "${value}"`,
      command,
    );
  }
  return number;
}

/** A request given on the command line, parsed before anything connects. */
function jsonRequest(json: string, command: CommandName): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(
      `the request is not valid JSON (${why}); quote strings twice, e.g. '"Hello World"'`,
      command,
    );
  }
}

/** `--method`: 1 to 255 bytes, as the AMQP `type` property (a short string) allows. */
function methodName(name: string | undefined, command: CommandName): string | undefined {
  if (name === undefined) return undefined;
  if (name.length === 0) throw new UsageError('--method needs a method name', command);
  if (Buffer.byteLength(name) > 255) {
    throw new UsageError('the method name is longer than 255 bytes', command);
  }
  return name;
}

function queueName(name: string, command: CommandName): string {
  if (name.length === 0) throw new UsageError('the queue name is empty', command);
  if (Buffer.byteLength(name) > 255) {
    throw new UsageError('the queue name is longer than 255 bytes', command);
  }
  return name;
}
