import { BaseRpcContext } from '@nestjs/microservices';
import type { HandlerContext, ParentContext } from '../index.js';

/** How a request reached the strategy: rabbit-rpc's own wire, or Nest's RMQ envelope. */
export type RabbitRpcWire = 'rabbit-rpc' | 'nest-envelope';

type ContextArgs = [HandlerContext, string, RabbitRpcWire];

/**
 * What `@Ctx()` gives a handler served by {@link RabbitRpcStrategy}: the request's deadline,
 * cancellation signal, headers and identity. It is a `ParentContext`, so a nested call
 * made with `{ parent: ctx }` inherits the remaining deadline and is cancelled with this
 * request.
 */
export class RabbitRpcContext extends BaseRpcContext<ContextArgs> implements ParentContext {
  /** Aborts at the caller's deadline, when the caller cancels, or when the server stops. */
  get signal(): AbortSignal {
    return this.args[0].signal;
  }
  /** The caller's deadline, Unix epoch milliseconds; undefined when it sent none. */
  get deadline(): number | undefined {
    return this.args[0].deadline;
  }
  /** The request's AMQP headers, the caller's application headers included. */
  get headers(): Readonly<Record<string, unknown>> {
    return this.args[0].headers;
  }
  /** The request's AMQP correlation id. */
  get correlationId(): string | undefined {
    return this.args[0].correlationId;
  }
  /** The request's stable id (`message_id`, else the correlation id). */
  get messageId(): string | undefined {
    return this.args[0].messageId;
  }
  /** The caller's RabbitMQ login (AMQP `user_id`, checked by the broker), if it sent one. */
  get userId(): string | undefined {
    return this.args[0].userId;
  }
  /** The queue the request came from. */
  get queue(): string {
    return this.args[0].queue;
  }
  /** True when the broker may have delivered this request before. */
  get redelivered(): boolean {
    return this.args[0].redelivered;
  }
  /** The pattern (method name) the request was dispatched on. */
  getPattern(): string {
    return this.args[1];
  }
  /** `rabbit-rpc` for requests in rabbit-rpc's wire format, `nest-envelope` for Nest's RMQ clients. */
  get wire(): RabbitRpcWire {
    return this.args[2];
  }
  /** The rabbit-rpc handler context underneath. */
  getHandlerContext(): HandlerContext {
    return this.args[0];
  }
}
