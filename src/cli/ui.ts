import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect, RpcError, type RpcConnection } from '../index.js';
import { UiServer } from '../ui/server.js';
import type { UiArgs } from './args.js';
import {
  brokerUrl,
  EXIT,
  exitCodeFor,
  interruptSignal,
  packageVersion,
  printRpcError,
  reportConnectError,
} from './output.js';

/**
 * `rabbit-rpc ui`: connects, starts the ui server, prints its address, and runs until
 * SIGINT/SIGTERM; then closes the server (ending calls in flight) and the connection.
 */
export async function runUi(args: UiArgs): Promise<number> {
  const url = brokerUrl(args.url);
  const interrupt = interruptSignal();
  let rpc: RpcConnection | undefined;
  let ui: UiServer | undefined;
  try {
    try {
      rpc = await connect({ url, signal: interrupt.signal, connectionName: 'rabbit-rpc ui' });
    } catch (error) {
      if (interrupt.signal.aborted) return EXIT.INTERRUPTED;
      return reportConnectError(error, url);
    }
    const connection = rpc;
    const broker = brokerLabel(url);
    // Without --port: 7373, or the next free one of ten (a stable address keeps the page's
    // history, stored per address); then any free port.
    const ports = args.port === undefined ? [...DEFAULT_PORTS, 0] : [args.port];
    for (const port of ports) {
      try {
        ui = await UiServer.start({
          rpc: connection,
          assets: assetsDir(),
          broker,
          version: packageVersion(),
          port,
          ...(args.host === undefined ? {} : { host: args.host }),
          log: (line) => process.stderr.write(`${line}\n`),
        });
        break;
      } catch (thrown) {
        const error = RpcError.from(thrown, 'INTERNAL');
        if (port !== ports[ports.length - 1] && /EADDRINUSE/.test(error.message)) continue;
        printRpcError(error);
        return exitCodeFor(error);
      }
    }
    if (ui === undefined) return EXIT.ERROR;
    process.stdout.write(
      `rabbit-rpc ui on ${ui.pageUrl}\n` +
        `  broker ${broker}; open the address as printed (the token after # is this run's)\n`,
    );
    if (args.host !== undefined) {
      process.stdout.write(
        `  listening on ${args.host}: whoever reaches this port and has the token can call ` +
          `every service with this connection's rights\n`,
      );
    }
    connection.onStateChange((state) => process.stderr.write(`connection ${state}\n`));
    // Until SIGINT/SIGTERM, or the connection ends for good (a reconnect the broker refused).
    const ended = await new Promise<RpcError | undefined>((resolve) => {
      if (interrupt.signal.aborted) resolve(undefined);
      interrupt.signal.addEventListener('abort', () => resolve(undefined), { once: true });
      void connection.closed.then(resolve);
    });
    if (ended !== undefined) {
      printRpcError(ended);
      return exitCodeFor(ended);
    }
    return EXIT.OK;
  } finally {
    interrupt.release();
    await ui?.close();
    await rpc?.close();
  }
}

/** The ports tried in turn when no --port is given. */
const DEFAULT_PORTS = Array.from({ length: 10 }, (_, index) => 7373 + index);

/** The broker as the page shows it: scheme, host, port and vhost; no user, no password. */
export function brokerLabel(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname || '/'}`;
  } catch {
    return 'the broker';
  }
}

/** dist/ui/ next to the built CLI; from a source checkout, the built one. */
function assetsDir(): string {
  const candidates = ['./ui/', '../../dist/ui/'].map((relative) =>
    fileURLToPath(new URL(relative, import.meta.url)),
  );
  return candidates.find((dir) => existsSync(`${dir}index.html`)) ?? (candidates[0] as string);
}
