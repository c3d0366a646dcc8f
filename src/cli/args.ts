/**
 * The CLI's command line: {@link parseCommandLine} and the types of what it returns. Each
 * command's parser is in the module of its family (args-call.ts, args-bench.ts,
 * args-serve.ts, args-discovery.ts), what they share in args-parse.ts.
 */
import { parseBench, type BenchArgs } from './args-bench.js';
import { parseBroadcast, parseCall, type BroadcastArgs, type CallArgs } from './args-call.js';
import {
  parseAsyncApi,
  parseDescribe,
  parsePing,
  parseServices,
  type AsyncApiArgs,
  type DescribeArgs,
  type PingArgs,
  type ServicesArgs,
} from './args-discovery.js';
import { isCommand, unknownCommand, UsageError, type HelpArgs } from './args-parse.js';
import {
  parseDemo,
  parseServe,
  parseUi,
  type DemoArgs,
  type ServeArgs,
  type UiArgs,
} from './args-serve.js';

export { COMMANDS, UsageError, type CommandName, type HelpArgs } from './args-parse.js';
export type { CallArgs, BroadcastArgs } from './args-call.js';
export type { BenchArgs } from './args-bench.js';
export type { HandlerSource, ServeArgs, DemoArgs, UiArgs } from './args-serve.js';
export type { PingArgs, ServicesArgs, DescribeArgs, AsyncApiArgs } from './args-discovery.js';

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
