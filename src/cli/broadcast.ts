import {
  connect,
  DEFAULT_BROADCAST_TIMEOUT_MS,
  RpcError,
  type BroadcastOptions,
  type BroadcastReply,
  type RpcConnection,
} from '../index.js';
import type { BroadcastArgs } from './args.js';
import {
  brokerUrl,
  EXIT,
  exitCodeFor,
  formatJson,
  paint,
  printRpcError,
  interruptSignal,
  reportConnectError,
} from './output.js';

/**
 * `rabbit-rpc broadcast`: sends one request to every server instance of a queue and prints
 * each instance's answer. Exit 0 when at least one answered and none failed, 1 when some
 * answered with an error, 3 (UNAVAILABLE) when none answered in time.
 */
export async function runBroadcast(args: BroadcastArgs): Promise<number> {
  const url = brokerUrl(args.url);
  const interrupt = interruptSignal();
  let rpc: RpcConnection | undefined;
  try {
    try {
      rpc = await connect({
        url,
        signal: interrupt.signal,
        connectionName: 'rabbit-rpc broadcast',
        reconnect: false,
      });
    } catch (error) {
      if (interrupt.signal.aborted) return EXIT.INTERRUPTED;
      return reportConnectError(error, url);
    }
    const options: BroadcastOptions = { signal: interrupt.signal };
    if (args.timeoutMs !== undefined) options.timeoutMs = args.timeoutMs;
    if (args.max !== undefined) options.max = args.max;
    let replies: BroadcastReply[];
    try {
      replies = await rpc.broadcast(args.queue, args.request, options);
    } catch (thrown) {
      const error = RpcError.from(thrown, 'UNKNOWN');
      printRpcError(error);
      return interrupt.signal.aborted ? EXIT.INTERRUPTED : exitCodeFor(error);
    }
    return report(args, replies);
  } finally {
    interrupt.release();
    await rpc?.close();
  }
}

function report(args: BroadcastArgs, replies: readonly BroadcastReply[]): number {
  if (args.json) process.stdout.write(formatJson(replies.map(jsonOf)) + '\n');
  else for (const reply of replies) process.stdout.write(lineOf(reply) + '\n');
  if (replies.length === 0) {
    const timeoutMs = args.timeoutMs ?? DEFAULT_BROADCAST_TIMEOUT_MS;
    printRpcError(
      new RpcError(
        'UNAVAILABLE',
        `no server instance of ${args.queue} answered within ${timeoutMs} ms`,
      ),
    );
    return EXIT.UNAVAILABLE;
  }
  return replies.every((reply) => reply.ok) ? EXIT.OK : EXIT.ERROR;
}

/** `<instance>  ok  <reply JSON>` or `<instance>  <CODE>  <message>`. */
function lineOf(reply: BroadcastReply): string {
  const out = process.stdout;
  if (reply.ok)
    return `${reply.instance}  ${paint('ok', 'green', out)}  ${formatJson(reply.reply)}`;
  const { code, message } = reply.error;
  return `${reply.instance}  ${paint(code, ['bold', 'red'], out)}  ${message}`;
}

/** An instance's answer in `--json`: the error as plain fields, its details when it has some. */
function jsonOf(reply: BroadcastReply): Record<string, unknown> {
  if (reply.ok) return { instance: reply.instance, ok: true, reply: reply.reply };
  const { code, message, details } = reply.error;
  return {
    instance: reply.instance,
    ok: false,
    code,
    message,
    ...(details === undefined ? {} : { details }),
  };
}
