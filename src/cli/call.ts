import { performance } from 'node:perf_hooks';
import {
  amqpTransport,
  connect,
  redactUrl,
  RpcError,
  type CallOptions,
  type RpcConnection,
} from '../index.js';
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
import { checkJsonSchema } from '../ui/json-schema.js';
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
        ...(verbose ? { transport: tracingTransport(amqpTransport, verbose) } : {}),
      });
    } catch (error) {
      if (interrupt.signal.aborted) return EXIT.INTERRUPTED;
      return reportConnectError(error, url);
    }
    verbose?.connected(performance.now() - connectStarted);
    const options: CallOptions = { signal: interrupt.signal };
    if (args.timeoutMs !== undefined) options.timeoutMs = args.timeoutMs;
    if (args.method !== undefined) options.method = args.method;
    if (args.method !== undefined && args.check) {
      const refused = await checkInput(
        rpc,
        args.queue,
        args.method,
        args.request,
        interrupt.signal,
      );
      if (refused !== undefined) return refused;
    }
    verbose?.calling(args.queue, args.method, args.timeoutMs);
    if (args.stream) {
      verbose?.streaming(args.window);
      return await printStream(rpc, args, interrupt.signal, verbose);
    }
    try {
      const reply = await rpc.call(args.queue, args.request, options);
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

/** How long `call --method` waits for the service to describe itself before calling unchecked. */
const DESCRIBE_TIMEOUT_MS = 1_000;

/**
 * Checks the request against the input schema the service describes (its first instance
 * to answer). Returns the exit code when it does not match (INVALID_ARGUMENT: what the
 * server would answer, exit 1, but nothing is sent); undefined to go on and call. No
 * description (not a rabbit-rpc server, no such method, no schema): nothing to check.
 */
async function checkInput(
  rpc: RpcConnection,
  queue: string,
  method: string,
  request: unknown,
  signal: AbortSignal,
): Promise<number | undefined> {
  let schema: unknown;
  try {
    const service = await rpc.describe(queue, { max: 1, timeoutMs: DESCRIBE_TIMEOUT_MS, signal });
    schema = service.methods.find((described) => described.name === method)?.input;
  } catch {
    return signal.aborted ? EXIT.INTERRUPTED : undefined;
  }
  if (schema === undefined) return undefined;
  const issues = checkJsonSchema(schema, request);
  if (issues.length === 0) return undefined;
  printRpcError(
    new RpcError(
      'INVALID_ARGUMENT',
      `the request does not match the input schema of ${method} (not sent; --no-check sends it anyway)`,
      { details: issues },
    ),
  );
  return EXIT.ERROR;
}

/** JSON replies as one line of JSON; binary (application/octet-stream) replies as raw bytes. */
function writeReply(reply: unknown): void {
  if (reply instanceof Uint8Array) process.stdout.write(reply);
  else process.stdout.write(formatJson(reply) + '\n');
}
