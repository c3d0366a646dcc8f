// A hybrid application (HTTP + microservice), as the issue writes it:
// app.connectMicroservice({ strategy: new RabbitRpcStrategy(...) }). The app's global filter
// reaches the microservice with inheritAppConfig, and leaves HTTP errors to Nest.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { Controller, Get, NotFoundException } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { MicroserviceOptions } from '@nestjs/microservices';
import { RabbitRpcExceptionFilter, RabbitRpcStrategy } from '../../src/nestjs/index.js';
import { AMQP_URL, connectForTest, uniqueQueue } from '../helpers.js';
import { mathModule } from './app.js';
import { byName, rejectsWith } from './helpers.js';

@Controller('http')
class HttpController {
  @Get('missing')
  missing(): never {
    throw new NotFoundException('no such page');
  }
}

describe('a hybrid app: connectMicroservice', async () => {
  const queue = uniqueQueue('nest.hybrid');
  const module = mathModule(AMQP_URL, queue);
  const app = await NestFactory.create(
    { ...module, controllers: [...(module.controllers ?? []), HttpController] },
    {
      logger: false,
    },
  );
  app.useGlobalFilters(new RabbitRpcExceptionFilter());
  app.connectMicroservice<MicroserviceOptions>(
    { strategy: new RabbitRpcStrategy({ url: AMQP_URL, queue }) },
    { inheritAppConfig: true },
  );
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  test.after(() => app.close());
  const call = byName(await connectForTest(), queue);

  test('the microservice answers, with codes from the inherited global filter', async () => {
    assert.equal(await call('add', { a: 20, b: 22 }), 42);
    await rejectsWith(call('fail.http', 404), 'NOT_FOUND');
    await rejectsWith(call('validated', { a: 0.5, b: 1 }), 'INVALID_ARGUMENT');
  });

  test('HTTP requests still get Nest HTTP error responses', async () => {
    const server = app.getHttpServer() as Server;
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/http/missing`);
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), {
      statusCode: 404,
      message: 'no such page',
      error: 'Not Found',
    });
  });
});
