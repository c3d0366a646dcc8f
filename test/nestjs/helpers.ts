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
  { filter = true }: { filter?: boolean } = {},
): Promise<{ app: INestMicroservice; strategy: RabbitRpcStrategy }> {
  const strategy = new RabbitRpcStrategy({ url: AMQP_URL, queue, ...options });
  const app = await NestFactory.createMicroservice(mathModule(AMQP_URL, queue), {
    strategy,
    logger: false,
  });
  if (filter) app.useGlobalFilters(new RabbitRpcExceptionFilter());
  await app.listen();
  after(() => app.close());
  return { app, strategy };
}

/** Calls a pattern of a Nest service by name: it travels in the AMQP `type`. */
export type CallByName = (
  pattern: string,
  input?: unknown,
  options?: CallOptions,
) => Promise<unknown>;

/** A typed-service client of `queue` without a contract, so any method name is callable. */
function untyped(rpc: RpcConnection, queue: string, options?: object): Record<string, unknown> {
  const client: unknown = rpc.client({ name: 'nest', queue } as never, options as never);
  return client as Record<string, unknown>;
}

/** `call(pattern, input, options)` on `queue`. */
export function byName(rpc: RpcConnection, queue: string): CallByName {
  const client = untyped(rpc, queue);
  return (pattern, input, options) =>
    (client[pattern] as (input: unknown, options?: CallOptions) => Promise<unknown>)(
      input,
      options,
    );
}

/** `stream(pattern, input)` on `queue`: the reply read with `for await`. */
export function streamByName(
  rpc: RpcConnection,
  queue: string,
  pattern: string,
): (input?: unknown) => AsyncIterable<unknown> {
  const client = untyped(rpc, queue, { streams: { [pattern]: true } });
  return client[pattern] as (input?: unknown) => AsyncIterable<unknown>;
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
