import { RpcError } from '../index.js';
import { parseCommandLine, UsageError } from './args.js';
import { runAsyncApi } from './asyncapi.js';
import { runBench } from './bench.js';
import { runBroadcast } from './broadcast.js';
import { runCall } from './call.js';
import { runDemo } from './demo.js';
import { runDescribe, runServices } from './discovery.js';
import { helpText } from './help.js';
import { runPing } from './ping.js';
import {
  brokerUrlProblem,
  EXIT,
  exitCodeFor,
  packageVersion,
  printRpcError,
  printUsageError,
} from './output.js';
import { runServe } from './serve.js';
import { runUi } from './ui.js';

/** Runs one command line and resolves with the process exit code. Never rejects. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const parsed = parseCommandLine(argv);
    if ('url' in parsed) {
      const problem = brokerUrlProblem(parsed.url);
      if (problem !== undefined) {
        printRpcError(problem);
        return EXIT.USAGE;
      }
    }
    switch (parsed.command) {
      case 'help':
        if (parsed.missingCommand) {
          process.stderr.write(helpText(undefined));
          return EXIT.USAGE;
        }
        process.stdout.write(helpText(parsed.topic));
        return EXIT.OK;
      case 'version':
        process.stdout.write(`${packageVersion()}\n`);
        return EXIT.OK;
      case 'call':
        return await runCall(parsed);
      case 'broadcast':
        return await runBroadcast(parsed);
      case 'ping':
        return await runPing(parsed);
      case 'serve':
        return await runServe(parsed);
      case 'bench':
        return await runBench(parsed);
      case 'demo':
        return await runDemo(parsed);
      case 'services':
        return await runServices(parsed);
      case 'describe':
        return await runDescribe(parsed);
      case 'asyncapi':
        return await runAsyncApi(parsed);
      case 'ui':
        return await runUi(parsed);
    }
  } catch (thrown) {
    if (thrown instanceof UsageError) {
      printUsageError(thrown.message, thrown.command);
      return EXIT.USAGE;
    }
    const error = RpcError.from(thrown, 'INTERNAL');
    printRpcError(error);
    return exitCodeFor(error);
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now, so the process ends on its own; should a stray handle keep it
// alive, end it anyway (unref: this timer alone does not keep the process running).
setTimeout(() => process.exit(code), 2_000).unref();
