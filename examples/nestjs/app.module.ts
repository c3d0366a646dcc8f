import { Module } from '@nestjs/common';
import { RabbitRpcModule } from '../../src/nestjs/index.js'; // 'rabbit-rpc/nestjs'
import { MathController } from './math.controller.js';

@Module({
  // One rabbit-rpc connection for the app, closed on shutdown after the server drained.
  imports: [RabbitRpcModule.forRoot({ connection: process.env['AMQP_URL'] })],
  controllers: [MathController],
})
export class AppModule {}
