import { once } from 'node:events';
import { RpcError, type RpcConnection, type StreamOptions } from '../index.js';
import type { CallArgs } from './args.js';
import { EXIT, exitCodeFor, formatJson, printRpcError } from './output.js';
import type { VerboseCall } from './verbose.js';

/**
 * `call --stream`: asks `args.queue` for a streamed reply and writes each item to stdout as
 * it comes (JSON items as one line each, bytes raw). Returns the exit code: the items stay
 * printed whatever ends the stream; an error then goes to stderr as for a plain call.
 * `interrupt` (SIGINT/SIGTERM) stops reading, which cancels the stream on the server.
 */
export async function printStream(
  rpc: RpcConnection,
  args: CallArgs,
  interrupt: AbortSignal,
  verbose: VerboseCall | undefined,
): Promise<number> {
  // A reader that goes away (`| head -n 3`) closes our stdout: writing then fails with
  // EPIPE, emitted as 'error'. That ends the stream like a `break` would, and must not
  // crash the CLI; the listener stays for the rest of the run, as a late write may fail too.
  const readerGone = new AbortController();
  process.stdout.on('error', () => readerGone.abort());
  const signal = AbortSignal.any([interrupt, readerGone.signal]);
  const options: StreamOptions = { signal };
  if (args.timeoutMs !== undefined) options.timeoutMs = args.timeoutMs;
  if (args.window !== undefined) options.window = args.window;
  if (args.method !== undefined) options.method = args.method;
  const stream = rpc.stream(args.queue, args.request, options);
  let failure: unknown;
  let stoppedEarly = false;
  try {
    // Leaving this loop early (break, a failed write) returns the stream: a cancel to the server.
    for await (const item of stream) {
      // Items already buffered would still come after an abort: stop printing at once.
      if (signal.aborted) {
        stoppedEarly = true;
        break;
      }
      verbose?.item();
      await writeItem(item, signal);
    }
  } catch (thrown) {
    failure = thrown;
  }
  verbose?.streamFinished();
  if (readerGone.signal.aborted) return EXIT.OK; // nobody reads any more: nothing to say
  if (failure === undefined && !stoppedEarly) return EXIT.OK;
  // Interrupted: the stream's CANCELLED, or this when it stopped between items or while
  // waiting for stdout to drain.
  const error =
    failure instanceof RpcError
      ? failure
      : interrupt.aborted
        ? new RpcError('CANCELLED', 'the stream was interrupted')
        : RpcError.from(failure, 'UNKNOWN');
  printRpcError(error);
  return interrupt.aborted ? EXIT.INTERRUPTED : exitCodeFor(error);
}

/**
 * One item to stdout. When the pipe is full, waits for it to drain before the next item is
 * read, so a slow reader slows the server down (through the stream's window) instead of
 * filling this process's memory.
 */
async function writeItem(item: unknown, signal: AbortSignal): Promise<void> {
  const chunk = item instanceof Uint8Array ? item : formatJson(item) + '\n';
  if (process.stdout.write(chunk)) return;
  await once(process.stdout, 'drain', { signal });
}
