/** The command lines of the commands that look at the broker: `ping`, `services`, `describe`, `asyncapi`. */
import {
  integerValue,
  MAX_TIMEOUT_MS,
  parse,
  queueName,
  stringValue,
  UsageError,
  type HelpArgs,
} from './args-parse.js';

export interface PingArgs {
  readonly command: 'ping';
  /** A queue name, or a service name whose queue is `rpc.<name>`. */
  readonly target: string;
  readonly url: string | undefined;
  readonly timeoutMs: number | undefined;
  /** One line of JSON on stdout instead of the sentence. */
  readonly json: boolean;
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

export function parsePing(args: string[]): PingArgs | HelpArgs {
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

export function parseServices(args: string[]): ServicesArgs | HelpArgs {
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

export function parseDescribe(args: string[]): DescribeArgs | HelpArgs {
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

export function parseAsyncApi(args: string[]): AsyncApiArgs | HelpArgs {
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
