import { readFileSync } from 'node:fs';
import { checkUrl, redactUrl, RpcError } from '../index.js';

export { redactUrl };

/** Exit codes of every command; docs/cli.md documents them for scripts. */
export const EXIT = {
  /** Success. */
  OK: 0,
  /** The call failed with any other error code (usually a handler's error reply). */
  ERROR: 1,
  /** Bad command line, bad JSON, bad URL, unloadable module: nothing was sent. */
  USAGE: 2,
  /**
   * UNAVAILABLE: no broker answered, no queue/server for the request, or the connection
   * dropped; `ping`: no such queue, or nothing consumes it.
   */
  UNAVAILABLE: 3,
  /** DEADLINE_EXCEEDED: no reply within --timeout-ms (`ping`: the broker did not answer in time). */
  DEADLINE_EXCEEDED: 4,
  /** Interrupted by SIGINT/SIGTERM before it finished (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

/** The broker URL when `--url` is not given: `AMQP_URL`, else the local default. */
export const DEFAULT_URL = 'amqp://guest:guest@localhost:5672';

export function brokerUrl(url: string | undefined): string {
  return url ?? process.env['AMQP_URL'] ?? DEFAULT_URL;
}

/**
 * What is wrong with the broker URL a command would use, named after where it came from
 * (`--url`, else `AMQP_URL`): "AMQP_URL is empty" rather than "url is not a valid URL: ".
 * Undefined when it is fine.
 */
export function brokerUrlProblem(url: string | undefined): RpcError | undefined {
  const fromEnvironment = process.env['AMQP_URL'];
  try {
    if (url !== undefined) checkUrl(url, '--url');
    else if (fromEnvironment !== undefined) checkUrl(fromEnvironment, 'AMQP_URL');
    return undefined;
  } catch (error) {
    return RpcError.from(error, 'INVALID_ARGUMENT');
  }
}

/** The exit code for an error the library raised. */
export function exitCodeFor(error: RpcError): number {
  if (error.code === 'UNAVAILABLE') return EXIT.UNAVAILABLE;
  if (error.code === 'DEADLINE_EXCEEDED') return EXIT.DEADLINE_EXCEEDED;
  return EXIT.ERROR;
}

/** `CODE: message` on stderr, plus the error's details (JSON) when it has some. */
export function printRpcError(error: RpcError): void {
  const lines = [`${paint(error.code, ['bold', 'red'])}: ${error.message}`];
  if (error.details !== undefined) {
    lines.push(`${paint('details:', 'dim')} ${safeJson(error.details)}`);
  }
  process.stderr.write(lines.join('\n') + '\n');
}

/**
 * Reports a failed `connect()` and returns the exit code. INVALID_ARGUMENT there means a bad
 * `--url`/`AMQP_URL` (a usage error); UNAVAILABLE gets a hint on how to start a broker.
 */
export function reportConnectError(thrown: unknown, url: string): number {
  const error = RpcError.from(thrown, 'UNAVAILABLE');
  printRpcError(error);
  if (error.code === 'INVALID_ARGUMENT') return EXIT.USAGE;
  if (error.code === 'UNAVAILABLE') {
    process.stderr.write(
      `No RabbitMQ answered at ${redactUrl(url)}. Start one: ` +
        '`sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached` ' +
        '(or pass --url / set AMQP_URL)\n',
    );
  }
  return exitCodeFor(error);
}

/** A usage error: the message, then where to read more. */
export function printUsageError(message: string, command: string | undefined): void {
  const help = command === undefined ? 'rabbit-rpc --help' : `rabbit-rpc ${command} --help`;
  process.stderr.write(
    `${paint('rabbit-rpc:', ['bold', 'red'])} ${message}\nRun '${paint(help, 'bold')}' for usage.\n`,
  );
}

/** A reply as one line of JSON; `undefined` (an empty reply) as `null`. */
export function formatJson(value: unknown): string {
  return safeJson(value);
}

function safeJson(value: unknown): string {
  try {
    // JSON.stringify returns undefined for undefined (an empty reply), functions and symbols.
    return orNull(JSON.stringify(value));
  } catch {
    return String(value);
  }
}

function orNull(json: string | undefined): string {
  return json ?? 'null';
}

/** Milliseconds with `digits` decimals (one by default), e.g. `3.4 ms`. */
export function formatMs(ms: number, digits = 1): string {
  return `${ms.toFixed(digits)} ms`;
}

const STYLES = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;
export type Style = keyof typeof STYLES;

/** The part of a stream {@link colourEnabled} looks at. */
export interface MaybeTerminal {
  readonly isTTY?: boolean | undefined;
}

/**
 * Whether to colour what goes to `stream`. `NO_COLOR` (set and not empty) turns colour off
 * and wins over everything; `FORCE_COLOR` (set and not empty) turns it on, except `0` and
 * `false`, which turn it off; otherwise colour only when `stream` is a terminal.
 */
export function colourEnabled(
  stream: MaybeTerminal,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  const noColor = env['NO_COLOR'];
  if (noColor !== undefined && noColor !== '') return false;
  const force = env['FORCE_COLOR'];
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return stream.isTTY === true;
}

/**
 * `text` in ANSI `style` (one or several) when {@link colourEnabled} says so for `stream`,
 * else `text` unchanged. Plain escape codes: no dependency, same output on every Node.
 */
export function paint(
  text: string,
  style: Style | readonly Style[],
  stream: MaybeTerminal = process.stderr,
): string {
  if (text === '' || !colourEnabled(stream)) return text;
  const codes = (typeof style === 'string' ? [style] : style).map((name) => STYLES[name]);
  return `\u001b[${codes.join(';')}m${text}\u001b[0m`;
}

/** The version in the nearest package.json named rabbit-rpc (dist/ or src/cli/ both work). */
export function packageVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const text = readFileSync(new URL(relative, import.meta.url), 'utf8');
      const parsed = JSON.parse(text) as { name?: unknown; version?: unknown };
      if (parsed.name === 'rabbit-rpc' && typeof parsed.version === 'string') return parsed.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

/**
 * An AbortSignal that SIGINT or SIGTERM aborts, for a command that stops cleanly on either;
 * `release()` removes the handlers (the default ones apply again).
 */
export function interruptSignal(): { readonly signal: AbortSignal; release(): void } {
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: interrupt.signal,
    release() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
