/**
 * rabbit-rpc for NestJS: a transport strategy that serves `@MessagePattern` handlers over
 * rabbit-rpc, a `ClientProxy` that calls them, and a module that provides connections and
 * typed clients. Needs `@nestjs/common`, `@nestjs/core`, `@nestjs/microservices` (11 or 12),
 * `rxjs` and `reflect-metadata`. See docs/guides/nestjs.md.
 *
 * ```ts
 * import { RabbitRpcStrategy, RabbitRpcExceptionFilter } from 'rabbit-rpc/nestjs';
 * const app = await NestFactory.createMicroservice(AppModule, {
 *   strategy: new RabbitRpcStrategy({ url: process.env.AMQP_URL, queue: 'math' }),
 * });
 * app.useGlobalFilters(new RabbitRpcExceptionFilter());
 * await app.listen();
 * ```
 * @packageDocumentation
 * @module rabbit-rpc/nestjs
 */
export { RabbitRpcStrategy } from './strategy.js';
export type {
  RabbitRpcEvents,
  RabbitRpcServeOptions,
  RabbitRpcStatus,
  RabbitRpcStrategyOptions,
} from './strategy.js';
export { RabbitRpcContext } from './context.js';
export type { RabbitRpcWire } from './context.js';
export { RabbitRpcExceptionFilter } from './exception-filter.js';
export { codeForHttpStatus, toRpcError } from './errors.js';
export { RabbitRpcClient } from './client.js';
export type { RabbitRpcClientOptions, RabbitRpcSendOptions } from './client.js';
export {
  DEFAULT_CONNECTION,
  getConnectionToken,
  getServiceClientToken,
  InjectConnection,
  InjectServiceClient,
  RabbitRpcModule,
} from './module.js';
export type {
  ConnectionSettings,
  RabbitRpcModuleAsyncOptions,
  RabbitRpcModuleOptions,
  RabbitRpcModuleShared,
  RabbitRpcProxyOptions,
} from './module.js';
