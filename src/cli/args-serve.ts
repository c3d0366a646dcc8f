/** The command lines of the commands that run until stopped: `serve`, `demo`, `ui`. */
import {
  integerValue,
  parse,
  queueName,
  stringValue,
  UsageError,
  type HelpArgs,
} from './args-parse.js';

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

export interface DemoArgs {
  readonly command: 'demo';
  readonly url: string | undefined;
}

export interface UiArgs {
  readonly command: 'ui';
  readonly url: string | undefined;
  /** The address to listen on; loopback (127.0.0.1) unless given. */
  readonly host: string | undefined;
  /** The port; undefined: 7373 or the next free one. */
  readonly port: number | undefined;
}

export function parseServe(args: string[]): ServeArgs | HelpArgs {
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

export function parseDemo(args: string[]): DemoArgs | HelpArgs {
  const { values, positionals } = parse('demo', args, { url: { type: 'string' } });
  if (values['help'] === true) return { command: 'help', topic: 'demo' };
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals.join(' ')}"`, 'demo');
  }
  return { command: 'demo', url: stringValue(values['url']) };
}

export function parseUi(args: string[]): UiArgs | HelpArgs {
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
