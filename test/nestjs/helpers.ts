import assert from 'node:assert/strict';
import { after } from 'node:test';
import { NestFactory } from '@nestjs/core';
import type { INestMicroservice } from '@nestjs/common';
import type { CallOptions, RpcConnection, RpcError, RpcErrorCode } from '../../src/index.js';
import {
  RabbitRpcExceptionFilter,
  RabbitRpcStrategy,
  type RabbitRpcStrategyOptions,
} from '../../src/nestjs/index.js';
import { AMQP_URL, assertCode } from '../helpers.js';
import { mathModule } from './app.js';

/** Starts the test app as a standalone Nest microservice on `queue`; closed when the file ends. */
export async function startMathService(
  queue: string,
  options: Omit<RabbitRpcStrategyOptions, 'queue' | 'url'> = {},
): Promise<{ app: INestMicroservice; strategy: RabbitRpcStrategy }> {
  const strategy = new RabbitRpcStrategy({ url: AMQP_URL, queue, ...options });
  const app = await NestFactory.createMicroservice(mathModule(AMQP_URL, queue), {
    strategy,
    logger: false,
  });
  app.useGlobalFilters(new RabbitRpcExceptionFilter());
  await app.listen();
  after(() => app.close());
  return { app, strategy };
}

/** A method of a Nest service called by name: the pattern travels in the AMQP `type`. */
export type CallByName = (input?: unknown, options?: CallOptions) => Promise<unknown>;

/** A typed-service client of `queue` that calls any pattern by name (no contract). */
export function byName(rpc: RpcConnection, queue: string): Record<string, CallByName> {
  return rpc.client({ name: 'nest', queue } as never) as unknown as Record<string, CallByName>;
}

/** The same, for patterns whose reply is streamed (`for await`). */
export function streamsByName(
  rpc: RpcConnection,
  queue: string,
  patterns: readonly string[],
): Record<string, (input?: unknown) => AsyncIterable<unknown>> {
  const streams = Object.fromEntries(patterns.map((p) => [p, true]));
  return rpc.client({ name: 'nest', queue } as never, { streams } as never) as unknown as Record<
    string,
    (input?: unknown) => AsyncIterable<unknown>
  >;
}

/** Awaits `promise`, which must reject with an RpcError `code`; returns that error. */
export async function rejectsWith(
  promise: Promise<unknown>,
  code: RpcErrorCode,
): Promise<RpcError> {
  try {
    await promise;
  } catch (error) {
    return assertCode(error, code);
  }
  assert.fail(`expected a rejection with ${code}`);
}
