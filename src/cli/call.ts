import { connect, RpcError, type RpcConnection } from '../index.js';
import type { CallArgs } from './args.js';
import {
  brokerUrl,
  EXIT,
  exitCodeFor,
  formatJson,
  printRpcError,
  reportConnectError,
} from './output.js';

/** `rabbit-rpc call`: one request, the reply as JSON on stdout; returns the exit code. */
export async function runCall(args: CallArgs): Promise<number> {
  const url = brokerUrl(args.url);
  const interrupt = new AbortController();
  const onSignal = (): void => interrupt.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let rpc: RpcConnection | undefined;
  try {
    try {
      // One call: reconnecting would not save it (calls fail UNAVAILABLE on a loss anyway).
      rpc = await connect({
        url,
        signal: interrupt.signal,
        connectionName: 'rabbit-rpc call',
        reconnect: false,
      });
    } catch (error) {
      if (interrupt.signal.aborted) return EXIT.INTERRUPTED;
      return reportConnectError(error, url);
    }
    const options = { signal: interrupt.signal, ...optionalTimeout(args.timeoutMs) };
    try {
      const reply = await rpc.call(args.queue, args.request, options);
      writeReply(reply);
      return EXIT.OK;
    } catch (thrown) {
      const error = RpcError.from(thrown, 'UNKNOWN');
      printRpcError(error);
      return interrupt.signal.aborted ? EXIT.INTERRUPTED : exitCodeFor(error);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rpc?.close();
  }
}

function optionalTimeout(timeoutMs: number | undefined): { timeoutMs?: number } {
  return timeoutMs === undefined ? {} : { timeoutMs };
}

/** JSON replies as one line of JSON; binary (application/octet-stream) replies as raw bytes. */
function writeReply(reply: unknown): void {
  if (reply instanceof Uint8Array) process.stdout.write(reply);
  else process.stdout.write(formatJson(reply) + '\n');
}
