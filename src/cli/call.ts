import { performance } from 'node:perf_hooks';
import { connect, RpcError, type CallOptions, type RpcConnection } from '../index.js';
import { openAmqp } from '../amqp.js';
import { redactUrl } from '../options.js';
import type { CallArgs } from './args.js';
import {
  brokerUrl,
  EXIT,
  exitCodeFor,
  formatJson,
  printRpcError,
  interruptSignal,
  reportConnectError,
} from './output.js';
import { printStream } from './stream.js';
import { tracingTransport } from './trace.js';
import { VerboseCall } from './verbose.js';

/**
 * `rabbit-rpc call`: one request, the reply as JSON on stdout (with `--stream`, each item of
 * a streamed reply as it comes); returns the exit code.
 */
export async function runCall(args: CallArgs): Promise<number> {
  const url = brokerUrl(args.url);
  const verbose = args.verbose ? new VerboseCall() : undefined;
  const interrupt = interruptSignal();
  let rpc: RpcConnection | undefined;
  try {
    verbose?.connecting(redactUrl(url));
    const connectStarted = performance.now();
    try {
      // One call (or stream): reconnecting would not save it (it fails UNAVAILABLE on a loss).
      rpc = await connect({
        url,
        signal: interrupt.signal,
        connectionName: 'rabbit-rpc call',
        reconnect: false,
        // --verbose watches the request and reply on the wire; it changes nothing.
        ...(verbose ? { transport: tracingTransport(openAmqp, verbose) } : {}),
      });
    } catch (error) {
      if (interrupt.signal.aborted) return EXIT.INTERRUPTED;
      return reportConnectError(error, url);
    }
    verbose?.connected(performance.now() - connectStarted);
    const options: CallOptions = { signal: interrupt.signal };
    if (args.timeoutMs !== undefined) options.timeoutMs = args.timeoutMs;
    verbose?.calling(args.queue, args.method, args.timeoutMs);
    if (args.stream) {
      verbose?.streaming(args.window);
      return await printStream(rpc, args, interrupt.signal, verbose);
    }
    try {
      const reply =
        args.method === undefined
          ? await rpc.call(args.queue, args.request, options)
          : await rpc.callMethod(args.queue, args.method, args.request, options);
      verbose?.finished();
      writeReply(reply);
      return EXIT.OK;
    } catch (thrown) {
      const error = RpcError.from(thrown, 'UNKNOWN');
      verbose?.finished();
      printRpcError(error);
      return interrupt.signal.aborted ? EXIT.INTERRUPTED : exitCodeFor(error);
    }
  } finally {
    interrupt.release();
    await rpc?.close();
  }
}

/** JSON replies as one line of JSON; binary (application/octet-stream) replies as raw bytes. */
function writeReply(reply: unknown): void {
  if (reply instanceof Uint8Array) process.stdout.write(reply);
  else process.stdout.write(formatJson(reply) + '\n');
}
