// The math service as a Nest microservice over rabbit-rpc. From the repository root:
//   node --import tsx --import ./scripts/nest-decorators.mjs examples/nestjs/main.ts
// then call it from Nest (examples/nestjs/caller.ts), from plain rabbit-rpc
// (npx tsx examples/client.ts), or from the CLI:
//   npx rabbit-rpc call rpc.math '{"a": 1, "b": 2}' --method add
// (In your project, Nest's own build compiles it: tsc or nest build, with
// emitDecoratorMetadata; the --import above only stands in for that here.)
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { RpcConnection } from '../../src/index.js'; // 'rabbit-rpc' in your project
import {
  getConnectionToken,
  RabbitRpcExceptionFilter,
  RabbitRpcStrategy,
} from '../../src/nestjs/index.js';
import { math } from '../contract.js';
import { AppModule } from './app.module.js';

// The tests run the example on a queue of their own; you would leave this out.
const queue = process.env['MATH_QUEUE'] ?? math.queue;

const app = await NestFactory.createMicroservice(AppModule, {
  // The strategy serves on RabbitRpcModule's connection, injected like any provider.
  inject: [getConnectionToken()],
  useFactory: (connection: RpcConnection) => ({
    strategy: new RabbitRpcStrategy({ connection, service: math, queue, prefetch: 10 }),
  }),
});
// Keeps handler errors' codes (HttpException, RpcError, ValidationPipe) for the caller.
app.useGlobalFilters(new RabbitRpcExceptionFilter());
// On SIGTERM/SIGINT: stop taking requests, finish those in flight, close the connection.
app.enableShutdownHooks();
await app.listen();
console.log(`serving "${math.name}" on queue "${queue}"; Ctrl-C to stop`);
