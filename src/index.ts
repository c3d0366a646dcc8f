/**
 * rabbit-rpc: request/response RPC over RabbitMQ.
 *
 * ```ts
 * import { connect, RpcError } from 'rabbit-rpc';
 * const rpc = await connect(process.env.AMQP_URL);
 * const server = await rpc.serve('rpc_queue', async (request) => `Processed: ${request}`);
 * const reply = await rpc.call('rpc_queue', 'Hello World', { timeoutMs: 5_000 });
 * ```
 * @packageDocumentation
 * @module rabbit-rpc
 */
export { connect, RpcConnection } from './connection.js';
export type { ConnectionState, ConnectionStats } from './connection.js';
export { RpcServer } from './server/server.js';
export type { ServerStats } from './server/server.js';
export type { Handler, HandlerContext } from './handler.js';
export { RpcError, ERROR_CODES, isRpcErrorCode } from './errors.js';
export type { RpcErrorCode, RpcErrorOptions } from './errors.js';
export type {
  BroadcastOptions,
  CallOptions,
  ParentContext,
  StreamOptions,
} from './options/call.js';
export type {
  BatchOptions,
  ConnectOptions,
  ReconnectOptions,
  ReplyMode,
} from './options/connect.js';
export type { ServeOptions, ServeBatchOptions } from './options/serve.js';
export type { BroadcastReply } from './client/broadcast.js';
export type { RpcStream } from './client/stream.js';
export type {
  CallInterceptor,
  CallKind,
  CallNext,
  CallRequest,
  ServeInterceptor,
  ServeNext,
} from './interceptors.js';
export type { Logger, LogFn } from './logger.js';
export type {
  AmqpChannelLike,
  AmqpClientLike,
  AmqpConsumerLike,
  AmqpField,
  AmqpMessageLike,
  AmqpProperties,
  AmqpTransport,
  AmqpTransportOptions,
} from './transport/types.js';
export type { CallerStats } from './client/caller.js';
export { CONNECT_DEFAULTS } from './options/connect.js';
export { DEFAULT_BROADCAST_TIMEOUT_MS, DEFAULT_STREAM_WINDOW } from './options/call.js';
export { checkUrl, redactUrl } from './options/url.js';
export { amqpTransport } from './transport/amqp-client.js';
export { SERVE_DEFAULTS } from './options/serve.js';
export { defineService, isServiceDefinition, method, typeOnly } from './contract/define-service.js';
export type { DefineServiceOptions } from './contract/define-service.js';
export { isServiceError } from './contract/service-client.js';
export type {
  ServiceClientOptions,
  ServiceRef,
  ServiceRefOptions,
} from './contract/service-client.js';
export type { ServiceServeOptions } from './contract/service-server.js';
export type {
  AnyService,
  ErrorSpecs,
  InferInput,
  InferOutput,
  IsStreamMethod,
  MethodName,
  MethodSpec,
  MethodSpecs,
  ServiceClient,
  ServiceContext,
  ServiceDefinition,
  ServiceError,
  ServiceErrorCode,
  ServiceErrorDetails,
  ServiceHandlerInput,
  ServiceHandlerOutput,
  ServiceImplementation,
  ServiceInput,
  ServiceOutput,
  Shape,
  StreamMethodName,
  TypeOnly,
  ValidationIssue,
} from './contract/types.js';
export type {
  StandardSchemaV1,
  StandardSchemaV1Issue,
  StandardSchemaV1Props,
  StandardSchemaV1Result,
} from './contract/standard-schema.js';
export { describeService } from './contract/describe.js';
export { DEFAULT_DISCOVERY_TIMEOUT_MS } from './client/discovery.js';
export type { DiscoveryOptions, ServiceDescription } from './client/discovery.js';
export type {
  ContractDescription,
  InstanceCounters,
  InstanceDescription,
  JsonSchema,
  MethodDescription,
} from './protocol/describe.js';
