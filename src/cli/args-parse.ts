/**
 * What every command's parser shares: the command names, the usage error, and the flag,
 * number, JSON, queue and method readers that turn a bad command line into a
 * {@link UsageError} in the CLI's words.
 */
import { Buffer } from 'node:buffer';
import { parseArgs } from 'node:util';
import { closestName } from '../option-names.js';

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

export interface HelpArgs {
  readonly command: 'help';
  readonly topic: CommandName | undefined;
  /**
   * `rabbit-rpc` with nothing after it: the help goes to stderr and the exit code is 2, so
   * that a script whose command came out empty still fails.
   */
  readonly missingCommand?: true;
}

/** The largest delay a Node timer accepts; the library's upper bound for timeouts. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
type ParsedValues = Record<string, string | boolean | undefined>;

export function parse(
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

export function unknownCommand(name: string): UsageError {
  const suggestion = closestName(name, COMMANDS);
  const hint =
    suggestion === undefined
      ? `; the commands are ${COMMANDS.join(', ')}`
      : `: did you mean ${suggestion}?`;
  return new UsageError(`unknown command "${name}"${hint}`);
}

export function isCommand(name: string): name is CommandName {
  return (COMMANDS as readonly string[]).includes(name);
}

export function stringValue(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function integerValue(
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
export function jsonRequest(json: string, command: CommandName): unknown {
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
export function methodName(name: string | undefined, command: CommandName): string | undefined {
  if (name === undefined) return undefined;
  if (name.length === 0) throw new UsageError('--method needs a method name', command);
  if (Buffer.byteLength(name) > 255) {
    throw new UsageError('the method name is longer than 255 bytes', command);
  }
  return name;
}

export function queueName(name: string, command: CommandName): string {
  if (name.length === 0) throw new UsageError('the queue name is empty', command);
  if (Buffer.byteLength(name) > 255) {
    throw new UsageError('the queue name is longer than 255 bytes', command);
  }
  return name;
}
