import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  connect,
  isRpcErrorCode,
  RpcError,
  type ConnectionState,
  type Handler,
  type RpcConnection,
} from '../index.js';
import { UsageError, type HandlerSource, type ServeArgs } from './args.js';
import { brokerUrl, EXIT, exitCodeFor, printRpcError, reportConnectError } from './output.js';

/**
 * `rabbit-rpc serve`: answers requests on a queue until SIGINT/SIGTERM, then closes
 * gracefully. Returns the exit code.
 */
export async function runServe(args: ServeArgs): Promise<number> {
  // Load the handler first: a broken module is a usage error, found before connecting.
  const handler = await loadHandler(args.handler);
  const url = brokerUrl(args.url);

  let stopSignal: NodeJS.Signals | undefined;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal !== undefined) {
      process.stderr.write(`received ${signal} again: exiting without draining\n`);
      process.exit(EXIT.INTERRUPTED);
    }
    stopSignal = signal;
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    let rpc: RpcConnection;
    try {
      rpc = await connect({
        url,
        connectionName: `rabbit-rpc serve ${args.queue}`,
        ...(args.reconnect ? {} : { reconnect: false }),
      });
    } catch (error) {
      return reportConnectError(error, url);
    }
    const connection = rpc;
    let previous: ConnectionState = rpc.state;
    const unsubscribe = rpc.onStateChange((state) => {
      const line = stateLine(previous, state, connection.url);
      previous = state;
      if (line !== undefined) process.stderr.write(line + '\n');
    });
    try {
      const server = await rpc.serve(
        args.queue,
        handler,
        args.prefetch === undefined ? {} : { prefetch: args.prefetch },
      );
      const what = args.handler.kind === 'echo' ? 'echo' : `module ${args.handler.path}`;
      process.stderr.write(`serving ${args.queue} on ${rpc.url} (${what})\n`);

      // Ends on a signal, a connection lost for good, or a server that cannot consume any more.
      const lost = await Promise.race([stopped.then(() => undefined), rpc.closed, server.closed]);
      if (lost) {
        printRpcError(lost);
        return exitCodeFor(lost);
      }
      process.stderr.write(`received ${stopSignal ?? 'a signal'}: draining\n`);
      await server.close();
      process.stderr.write('stopped\n');
      return EXIT.OK;
    } catch (thrown) {
      const error = RpcError.from(thrown, 'UNKNOWN');
      printRpcError(error);
      return exitCodeFor(error);
    } finally {
      unsubscribe();
      await rpc.close();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** What `serve` says on stderr when the connection changes state; `closed` is reported apart. */
function stateLine(from: ConnectionState, to: ConnectionState, url: string): string | undefined {
  if (to === 'reconnecting') return `lost the connection to ${url}: reconnecting`;
  if (to === 'blocked') return 'the broker blocks publishing (a resource alarm): replies wait';
  if (to === 'connected') {
    return from === 'blocked' ? 'the broker unblocked publishing' : `reconnected to ${url}`;
  }
  return undefined;
}

async function loadHandler(source: HandlerSource): Promise<Handler> {
  if (source.kind === 'echo') return (request: unknown) => request;
  const href = pathToFileURL(resolve(process.cwd(), source.path)).href;
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(href)) as Record<string, unknown>;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`cannot load module ${source.path}: ${why}`, 'serve');
  }
  const exported = typeof loaded['default'] === 'function' ? loaded['default'] : loaded['handler'];
  if (typeof exported !== 'function') {
    throw new UsageError(
      `module ${source.path} exports no handler: give it a default export or an export named "handler" that is a function`,
      'serve',
    );
  }
  const handler = exported as Handler;
  return async (request, ctx) => {
    try {
      return await handler(request, ctx);
    } catch (error) {
      throw adoptRpcError(error);
    }
  };
}

/**
 * The module may import `RpcError` from another copy of rabbit-rpc than the one bundled in
 * this CLI, so `instanceof` fails and its code would be lost (UNKNOWN). Recognise such
 * errors by shape and rebuild them with this copy's class.
 */
function adoptRpcError(error: unknown): unknown {
  if (error instanceof RpcError || !(error instanceof Error) || error.name !== 'RpcError') {
    return error;
  }
  const { code, details } = error as Error & { code?: unknown; details?: unknown };
  if (!isRpcErrorCode(code)) return error;
  return new RpcError(code, error.message, { details, cause: error });
}
