import {
  Inject,
  type DynamicModule,
  type InjectionToken,
  type OptionalFactoryDependency,
  type Provider,
  type ModuleMetadata,
} from '@nestjs/common';
import {
  connect,
  type AnyService,
  type ConnectOptions,
  type RpcConnection,
  type ServiceClientOptions,
} from '../index.js';
import { RabbitRpcClient } from './client.js';

/** The broker: a URL, several URLs tried in turn, or full `ConnectOptions`. */
export type ConnectionSettings = string | readonly string[] | ConnectOptions;

/** The name of the default connection. */
export const DEFAULT_CONNECTION = 'default';

/** A `RabbitRpcClient` (Nest `ClientProxy`) to register, under `name` as its injection token. */
export interface RabbitRpcProxyOptions {
  /** Its injection token: `@Inject('MATH_SERVICE') client: ClientProxy`. */
  name: InjectionToken;
  /** The queue it calls. */
  queue: string;
  /** Deadline of each call in milliseconds. @default the connection's default (30 s) */
  timeoutMs?: number;
}

/** What both `forRoot` and `forRootAsync` take besides the connection settings. */
export interface RabbitRpcModuleShared {
  /** Names this connection, for apps with several (`getConnectionToken(name)`). @default 'default' */
  name?: string;
  /** Nest clients to provide on this connection. */
  clients?: readonly RabbitRpcProxyOptions[];
  /**
   * Contracts whose typed clients to provide (`@InjectServiceClient(contract, name?)`), each
   * a contract, or `{ service, ...ServiceClientOptions }` (another `queue`, validation).
   */
  services?: ReadonlyArray<AnyService | ({ service: AnyService } & ServiceClientOptions)>;
  /** Make the providers visible to every module. @default true */
  global?: boolean;
}

/** Options of `RabbitRpcModule.forRoot`. */
export interface RabbitRpcModuleOptions extends RabbitRpcModuleShared {
  /** The broker: a URL (or several) or full `ConnectOptions`. @default AMQP_URL, else localhost */
  connection?: ConnectionSettings | undefined;
}

/** Options of `RabbitRpcModule.forRootAsync`: the connection settings come from a factory. */
export interface RabbitRpcModuleAsyncOptions extends RabbitRpcModuleShared {
  imports?: ModuleMetadata['imports'];
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  /** Returns the connection settings, e.g. from `ConfigService`. */
  useFactory: (
    ...args: never[]
  ) =>
    | string
    | readonly string[]
    | ConnectOptions
    | Promise<string | readonly string[] | ConnectOptions>;
}

/** The injection token of a connection (`RpcConnection`). */
export function getConnectionToken(name: string = DEFAULT_CONNECTION): string {
  return `rabbit-rpc:connection:${name}`;
}

/** The injection token of a contract's typed client on a connection. */
export function getServiceClientToken(
  service: AnyService,
  name: string = DEFAULT_CONNECTION,
): string {
  return `rabbit-rpc:client:${name}:${service.name}:${service.queue}`;
}

/** `@InjectConnection(name?)`: injects the `RpcConnection`. */
export const InjectConnection = (name?: string): PropertyDecorator & ParameterDecorator =>
  Inject(getConnectionToken(name));

/** `@InjectServiceClient(contract, name?)`: injects `ServiceClient<typeof contract>`. */
export const InjectServiceClient = (
  service: AnyService,
  name?: string,
): PropertyDecorator & ParameterDecorator => Inject(getServiceClientToken(service, name));

/** A contract value (not `{ service, ... }`): `defineService` marks it. */
function isServiceDefinition(value: object): value is AnyService {
  return 'methods' in value && 'queue' in value && !('service' in value);
}

/** Closes a connection when Nest shuts down, after its microservices have drained. */
class ConnectionCloser {
  constructor(private readonly connection: RpcConnection) {}
  async onApplicationShutdown(): Promise<void> {
    await this.connection.close();
  }
}

function settings(
  value: string | readonly string[] | ConnectOptions | undefined,
): ConnectOptions | undefined {
  return typeof value === 'string' || Array.isArray(value)
    ? { url: value as string | readonly string[] }
    : (value as ConnectOptions | undefined);
}

/**
 * One rabbit-rpc connection per `forRoot` (or `forRootAsync`), with the Nest clients and
 * typed service clients that use it. The connection opens when the app starts and closes
 * on shutdown (`app.close()`, or a signal with `enableShutdownHooks()`), after the
 * microservices have drained.
 */
// Nest modules are classes; this one only has factories.
// eslint-disable-next-line @typescript-eslint/no-extraneous-class
export class RabbitRpcModule {
  static forRoot(options: RabbitRpcModuleOptions = {}): DynamicModule {
    const { connection } = options;
    return RabbitRpcModule.#build(options, {
      provide: getConnectionToken(options.name),
      useFactory: () => connect(settings(connection)),
    });
  }

  static forRootAsync(options: RabbitRpcModuleAsyncOptions): DynamicModule {
    // Nest calls the factory with the resolved `inject` tokens, in order.
    const factory = options.useFactory as (
      ...args: unknown[]
    ) => ConnectionSettings | Promise<ConnectionSettings>;
    return RabbitRpcModule.#build(
      options,
      {
        provide: getConnectionToken(options.name),
        useFactory: async (...args: unknown[]) => connect(settings(await factory(...args))),
        inject: options.inject ?? [],
      },
      options.imports,
    );
  }

  static #build(
    shared: RabbitRpcModuleShared,
    connection: Provider,
    imports: ModuleMetadata['imports'] = [],
  ): DynamicModule {
    const token = getConnectionToken(shared.name);
    const providers: Provider[] = [
      connection,
      {
        provide: `rabbit-rpc:closer:${shared.name ?? DEFAULT_CONNECTION}`,
        useFactory: (rpc: RpcConnection) => new ConnectionCloser(rpc),
        inject: [token],
      },
    ];
    const exported: InjectionToken[] = [token];
    for (const client of shared.clients ?? []) {
      providers.push({
        provide: client.name,
        useFactory: (rpc: RpcConnection) =>
          new RabbitRpcClient({
            connection: rpc,
            queue: client.queue,
            ...(client.timeoutMs === undefined ? {} : { timeoutMs: client.timeoutMs }),
          }),
        inject: [token],
      });
      exported.push(client.name);
    }
    for (const entry of shared.services ?? []) {
      const { service, ...clientOptions } = isServiceDefinition(entry) ? { service: entry } : entry;
      const serviceToken = getServiceClientToken(service, shared.name);
      providers.push({
        provide: serviceToken,
        useFactory: (rpc: RpcConnection) => rpc.client(service, clientOptions),
        inject: [token],
      });
      exported.push(serviceToken);
    }
    return {
      module: RabbitRpcModule,
      global: shared.global ?? true,
      imports,
      providers,
      exports: exported,
    };
  }
}
