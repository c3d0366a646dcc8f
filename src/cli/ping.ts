import { performance } from 'node:perf_hooks';
import { RpcError } from '../index.js';
import { forceClose, openAmqp } from '../transport/amqp-client.js';
import { fromAmqpError, replyCodeOf } from '../transport/errors.js';
import { resolveConnectOptions } from '../options/connect.js';
import { MAX_TIMEOUT_MS } from '../options/validate.js';
import type { AmqpClientLike } from '../index.js';
import type { PingArgs } from './args.js';
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

/** How long `ping` waits for the broker, connecting included, without `--timeout-ms`. */
export const PING_DEFAULT_TIMEOUT_MS = 5_000;

/** What a passive `queue.declare` says about a queue. */
export interface QueueInfo {
  readonly queue: string;
  readonly consumers: number;
  readonly messages: number;
}

/**
 * `rabbit-rpc ping <queue|service>`: whether anything consumes a queue, read with a passive
 * `queue.declare` (which creates nothing). Exit 0 when it has consumers; 3 (UNAVAILABLE)
 * when it does not exist or nothing consumes it. A name without a dot is also tried as a
 * service name, whose queue is `rpc.<name>` by default.
 */
export async function runPing(args: PingArgs): Promise<number> {
  const url = brokerUrl(args.url);
  const timeoutMs = args.timeoutMs ?? PING_DEFAULT_TIMEOUT_MS;
  const interrupt = interruptSignal();
  let client: AmqpClientLike | undefined;
  try {
    // One budget for everything, connecting included: running out of it is
    // DEADLINE_EXCEEDED (exit 4) wherever it happens, never "no broker answered" (exit 3,
    // which is for a refused or failed connection).
    const deadline = performance.now() + timeoutMs;
    try {
      const options = resolveConnectOptions({
        url,
        // The library's own connect timeout would be UNAVAILABLE: ours fires first.
        connectTimeoutMs: Math.min(MAX_TIMEOUT_MS, timeoutMs + 1_000),
        connectionName: 'rabbit-rpc ping',
      });
      const opening = openAmqp(url, options);
      client = await bounded(opening, interrupt.signal, timeoutMs, timeoutMs).catch(
        (error: unknown) => {
          // Interrupted or out of time while connecting: a connection that opens later is
          // dropped at once.
          opening.then(forceClose, () => undefined);
          throw error;
        },
      );
    } catch (error) {
      if (interrupt.signal.aborted) return EXIT.INTERRUPTED;
      if (error instanceof RpcError && error.code === 'DEADLINE_EXCEEDED') {
        printRpcError(error);
        return EXIT.DEADLINE_EXCEEDED;
      }
      return reportConnectError(error, url);
    }
    const candidates = args.target.includes('.')
      ? [args.target]
      : [args.target, `rpc.${args.target}`];
    let found: QueueInfo | undefined;
    try {
      const remaining = Math.max(1, Math.ceil(deadline - performance.now()));
      found = await bounded(findQueue(client, candidates), interrupt.signal, remaining, timeoutMs);
    } catch (thrown) {
      const error = RpcError.from(thrown, 'UNAVAILABLE');
      printRpcError(error);
      // A broker that did not answer in time may never answer the close either; and an
      // interrupted ping should end now.
      if (error.code === 'DEADLINE_EXCEEDED' || interrupt.signal.aborted) {
        forceClose(client);
        client = undefined;
      }
      return interrupt.signal.aborted ? EXIT.INTERRUPTED : exitCodeFor(error);
    }
    return report(args, candidates, found, url);
  } finally {
    interrupt.release();
    if (client !== undefined) await closeClient(client);
  }
}

/** The first of `names` that exists, or undefined when none does. */
async function findQueue(
  client: AmqpClientLike,
  names: readonly string[],
): Promise<QueueInfo | undefined> {
  for (const name of names) {
    const info = await inspectQueue(client, name);
    if (info !== undefined) return info;
  }
  return undefined;
}

/**
 * Consumer and message counts of queue `name`, or undefined when it does not exist (the
 * broker answers a passive declare of a missing queue with 404 and closes the channel, so
 * each look-up gets a channel of its own).
 */
export async function inspectQueue(
  client: AmqpClientLike,
  name: string,
): Promise<QueueInfo | undefined> {
  const channel = await client.channel();
  try {
    const declared = await channel.queueDeclare(name, { passive: true });
    return { queue: name, consumers: declared.consumerCount, messages: declared.messageCount };
  } catch (error) {
    if (replyCodeOf(error) === 404) return undefined;
    throw fromAmqpError(error, `checking queue "${name}" failed`);
  } finally {
    if (!channel.closed) await channel.close().catch(() => undefined);
  }
}

function report(
  args: PingArgs,
  candidates: readonly string[],
  found: QueueInfo | undefined,
  url: string,
): number {
  const service = found !== undefined && found.queue !== args.target ? args.target : undefined;
  if (args.json) {
    const json = {
      queue: found?.queue ?? args.target,
      ...(service === undefined ? {} : { service }),
      exists: found !== undefined,
      consumers: found?.consumers ?? 0,
      messages: found?.messages ?? 0,
    };
    process.stdout.write(formatJson(json) + '\n');
  }
  if (found === undefined) {
    const [first, ...others] = candidates;
    const names = `"${first}"` + others.map((name) => ` (nor "${name}")`).join('');
    printRpcError(
      new RpcError(
        'UNAVAILABLE',
        `no queue ${names} in vhost "${vhostOf(url)}": calls would fail at once`,
      ),
    );
    return EXIT.UNAVAILABLE;
  }
  if (!args.json) {
    const out = process.stdout;
    const name = service === undefined ? found.queue : `${found.queue} (service "${service}")`;
    const consumers = paint(
      plural(found.consumers, 'consumer'),
      found.consumers > 0 ? 'green' : ['bold', 'red'],
      out,
    );
    out.write(`${name}: ${consumers}, ${plural(found.messages, 'message')} waiting\n`);
  }
  if (found.consumers === 0) {
    printRpcError(
      new RpcError(
        'UNAVAILABLE',
        `no consumer on "${found.queue}": calls would wait until their deadline`,
      ),
    );
    return EXIT.UNAVAILABLE;
  }
  return EXIT.OK;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The vhost of an AMQP URL: its path without the slash, `/` when empty. */
function vhostOf(url: string): string {
  try {
    const path = new URL(url).pathname.slice(1);
    return path === '' ? '/' : decodeURIComponent(path);
  } catch {
    return '/';
  }
}

/**
 * `promise`, unless `signal` aborts first (CANCELLED) or, with `timeoutMs`, that passes first
 * (DEADLINE_EXCEEDED, saying the whole `budgetMs` the user gave, not what was left of it).
 * The caller disposes of what an abandoned promise yields.
 */
async function bounded<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  timeoutMs: number | undefined,
  budgetMs = timeoutMs,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        reject(
          new RpcError('DEADLINE_EXCEEDED', `the broker did not answer within ${budgetMs} ms`),
        );
      }, timeoutMs);
    }
    onAbort = () => reject(new RpcError('CANCELLED', 'ping was interrupted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, stop]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

/** Closes the connection politely, or drops it when the broker does not answer. */
async function closeClient(client: AmqpClientLike): Promise<void> {
  if (client.closed) return;
  try {
    await bounded(client.close(), new AbortController().signal, 1_000);
  } catch {
    forceClose(client);
  }
}
