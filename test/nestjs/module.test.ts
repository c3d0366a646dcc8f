// RabbitRpcModule: connections from forRoot and forRootAsync (ConfigService), named
// connections, injected Nest clients and typed service clients, closed with the app.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Inject, Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom } from 'rxjs';
import { z } from 'zod';
import { defineService, type RpcConnection, type ServiceClient } from '../../src/index.js';
import {
  getConnectionToken,
  InjectConnection,
  InjectServiceClient,
  RabbitRpcClient,
  RabbitRpcModule,
} from '../../src/nestjs/index.js';
import { AMQP_URL, uniqueQueue } from '../helpers.js';
import { startMathService } from './helpers.js';

const queue = uniqueQueue('nest.module');
const math = defineService(
  'math',
  {
    add: { input: z.object({ a: z.number(), b: z.number() }), output: z.number() },
    count: { input: z.number(), output: z.number(), stream: true },
    context: { input: z.null(), output: z.unknown() },
  },
  { queue },
);

@Injectable()
class Calculator {
  constructor(
    @InjectServiceClient(math) readonly typed: ServiceClient<typeof math>,
    @Inject('MATH') readonly proxy: ClientProxy,
    @InjectConnection() readonly main: RpcConnection,
    @InjectConnection('audit') readonly audit: RpcConnection,
    @Inject('AUDIT_MATH') readonly auditProxy: ClientProxy,
  ) {}
}

@Module({
  imports: [
    ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ amqp: { url: AMQP_URL } })] }),
    RabbitRpcModule.forRootAsync({
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        url: config.getOrThrow<string>('amqp.url'),
        connectionName: 'nest-main',
      }),
      services: [math],
      clients: [{ name: 'MATH', queue, timeoutMs: 5_000 }],
    }),
    RabbitRpcModule.forRoot({
      name: 'audit',
      connection: { url: AMQP_URL, connectionName: 'nest-audit' },
      clients: [{ name: 'AUDIT_MATH', queue }],
    }),
  ],
  providers: [Calculator],
})
class CallerModule {}

describe('RabbitRpcModule', async () => {
  await startMathService(queue, { service: math });

  test('forRootAsync with ConfigService, typed clients, Nest clients, named connections; app.close() closes them', async () => {
    const app = await NestFactory.createApplicationContext(CallerModule, { logger: false });
    const calculator = app.get(Calculator);
    try {
      assert.equal(await calculator.typed.add({ a: 1, b: 2 }), 3);
      assert.equal(await firstValueFrom(calculator.proxy.send('add', { a: 3, b: 4 })), 7);
      assert.equal(await firstValueFrom(calculator.auditProxy.send('add', { a: 5, b: 6 })), 11);
      assert.ok(calculator.proxy instanceof RabbitRpcClient);
      assert.notEqual(calculator.main, calculator.audit);
      assert.equal(app.get(getConnectionToken('audit')), calculator.audit);
      assert.equal(calculator.main.state, 'connected');
    } finally {
      await app.close();
    }
    assert.equal(calculator.main.state, 'closed');
    assert.equal(calculator.audit.state, 'closed');
    assert.equal(await calculator.main.closed, undefined);
  });

  test('a bad connection setting fails the app start with the RpcError', async () => {
    @Module({ imports: [RabbitRpcModule.forRoot({ connection: 'http://not-amqp' })] })
    class BadModule {}
    await assert.rejects(
      NestFactory.createApplicationContext(BadModule, { logger: false, abortOnError: false }),
      {
        name: 'RpcError',
        code: 'INVALID_ARGUMENT',
      },
    );
  });
});
