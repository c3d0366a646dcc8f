// Calls the math service from a Nest application, two ways: Nest's ClientProxy API
// (RabbitRpcClient: Observables, patterns) and the contract's typed client. From the root:
//   node --import tsx --import ./scripts/nest-decorators.mjs examples/nestjs/caller.ts
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { isServiceError, type ServiceClient } from '../../src/index.js'; // 'rabbit-rpc'
import { InjectServiceClient, RabbitRpcModule } from '../../src/nestjs/index.js'; // 'rabbit-rpc/nestjs'
import { math } from '../contract.js';

const queue = process.env['MATH_QUEUE'] ?? math.queue;

@Injectable()
class Calculator {
  constructor(
    @Inject('MATH') private readonly client: ClientProxy,
    @InjectServiceClient(math) private readonly typed: ServiceClient<typeof math>,
  ) {}

  async run(): Promise<void> {
    // Nest style: an Observable, with a deadline (RpcError DEADLINE_EXCEEDED) built in.
    console.log(
      'add via ClientProxy:',
      await firstValueFrom(this.client.send('add', { a: 1, b: 2 })),
    );
    // Typed: the compiler checks input and output against the contract.
    console.log('divide via the typed client:', await this.typed.divide({ a: 10, b: 4 }));
    try {
      await this.typed.divide({ a: 1, b: 0 });
    } catch (error) {
      if (isServiceError(error, math, 'divide', 'OUT_OF_RANGE')) {
        console.log(`divide by zero: ${error.code}, divisor ${error.details.divisor}`);
      } else throw error;
    }
    const items: number[] = [];
    for await (const n of this.typed.fibonacci({ count: 10 })) items.push(n);
    console.log('fibonacci:', items.join(' '));
  }
}

@Module({
  imports: [
    RabbitRpcModule.forRoot({
      connection: process.env['AMQP_URL'],
      clients: [{ name: 'MATH', queue, timeoutMs: 5_000 }],
      // The typed client of the contract; `{ service: math, validateInput: true }` for options.
      services: [{ service: math, queue }],
    }),
  ],
  providers: [Calculator],
})
class CallerModule {}

const app = await NestFactory.createApplicationContext(CallerModule, { logger: false });
try {
  await app.get(Calculator).run();
} finally {
  await app.close(); // closes the connection
}
