import {
  connect,
  RpcError,
  type DiscoveryOptions,
  type MethodDescription,
  type RpcConnection,
  type ServiceDescription,
} from '../index.js';
import type { DescribeArgs, ServicesArgs } from './args.js';
import {
  brokerUrl,
  EXIT,
  exitCodeFor,
  formatJson,
  interruptSignal,
  printRpcError,
  reportConnectError,
} from './output.js';

/**
 * Opens a connection for one discovery command, runs `work`, closes it; returns the exit
 * code. Shared by `services`, `describe` and `asyncapi --from-broker`.
 */
export async function withConnection(
  url: string | undefined,
  name: string,
  work: (rpc: RpcConnection, signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const broker = brokerUrl(url);
  const interrupt = interruptSignal();
  let rpc: RpcConnection | undefined;
  try {
    try {
      rpc = await connect({
        url: broker,
        signal: interrupt.signal,
        connectionName: name,
        reconnect: false,
      });
    } catch (error) {
      if (interrupt.signal.aborted) return EXIT.INTERRUPTED;
      return reportConnectError(error, broker);
    }
    try {
      return await work(rpc, interrupt.signal);
    } catch (thrown) {
      const error = RpcError.from(thrown, 'UNKNOWN');
      printRpcError(error);
      return interrupt.signal.aborted ? EXIT.INTERRUPTED : exitCodeFor(error);
    }
  } finally {
    interrupt.release();
    await rpc?.close();
  }
}

function discoveryOptions(timeoutMs: number | undefined, signal: AbortSignal): DiscoveryOptions {
  return timeoutMs === undefined ? { signal } : { timeoutMs, signal };
}

/** `rabbit-rpc services`: every rabbit-rpc service on the broker, one line each. */
export function runServices(args: ServicesArgs): Promise<number> {
  return withConnection(args.url, 'rabbit-rpc services', async (rpc, signal) => {
    const services = await rpc.services(discoveryOptions(args.timeoutMs, signal));
    if (args.json) {
      process.stdout.write(formatJson(services) + '\n');
      return EXIT.OK;
    }
    process.stdout.write(servicesTable(services));
    return EXIT.OK;
  });
}

/** The `services` table: queue, service, instances, methods. */
export function servicesTable(services: readonly ServiceDescription[]): string {
  if (services.length === 0) return 'no rabbit-rpc servers answered\n';
  const rows = [
    ['QUEUE', 'SERVICE', 'INSTANCES', 'METHODS'],
    ...services.map((service) => [
      service.queue,
      service.service ?? '-',
      String(service.instances.length) + (service.consistent ? '' : ' (differ)'),
      service.methods.length === 0 ? '-' : service.methods.map(methodLabel).join(', '),
    ]),
  ];
  const widths = [0, 1, 2].map((column) =>
    Math.max(...rows.map((row) => (row[column] ?? '').length)),
  );
  return (
    rows
      .map((row) =>
        row
          .map((cell, column) => (column < 3 ? cell.padEnd(widths[column] ?? 0) : cell))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function methodLabel(method: MethodDescription): string {
  return method.stream ? `${method.name} (stream)` : method.name;
}

/** `rabbit-rpc describe <queue>`: the service's methods with their schemas, and its instances. */
export function runDescribe(args: DescribeArgs): Promise<number> {
  return withConnection(args.url, 'rabbit-rpc describe', async (rpc, signal) => {
    const service = await rpc.describe(args.queue, discoveryOptions(args.timeoutMs, signal));
    process.stdout.write(args.json ? formatJson(service) + '\n' : describeText(service));
    return EXIT.OK;
  });
}

/** The human-readable description of one service. */
export function describeText(service: ServiceDescription): string {
  const lines: string[] = [];
  lines.push(`queue    ${service.queue}`);
  lines.push(`service  ${service.service ?? '- (a plain handler: no contract, no methods)'}`);
  if (!service.consistent)
    lines.push('note     the instances do not all describe the same methods');
  for (const method of service.methods) {
    const flags = [method.stream ? 'stream' : '', method.idempotent ? 'idempotent' : '']
      .filter(Boolean)
      .join(', ');
    lines.push('', `method ${method.name}${flags ? ` (${flags})` : ''}`);
    lines.push(`  input   ${schemaText(method.input)}`);
    lines.push(`  ${method.stream ? 'items ' : 'output'}  ${schemaText(method.output)}`);
    for (const error of method.errors) {
      lines.push(`  error   ${error.code}${error.details ? ` ${schemaText(error.details)}` : ''}`);
    }
  }
  lines.push('', 'instances');
  for (const instance of service.instances) {
    const errors = Object.entries(instance.counters.errors)
      .map(([code, count]) => `${code}=${count}`)
      .join(' ');
    lines.push(
      `  ${instance.instance}  ${instance.library.name} ${instance.library.version}` +
        `  since ${instance.startedAt}  in flight ${instance.inFlight}/${instance.prefetch}` +
        `  calls ${instance.counters.calls}${errors ? `  errors ${errors}` : ''}`,
    );
  }
  return lines.join('\n') + '\n';
}

function schemaText(schema: unknown): string {
  return schema === undefined ? '(no schema)' : formatJson(schema);
}
