// Nest handlers of the math contract (../contract.ts). Each @MessagePattern is a method of
// the contract: the pattern is the method name, carried in the AMQP `type` property.
import {
  Controller,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { interval, map, take, tap, type Observable } from 'rxjs';
import { RpcError } from '../../src/index.js'; // 'rabbit-rpc' in your project
import { RabbitRpcContext } from '../../src/nestjs/index.js'; // 'rabbit-rpc/nestjs'

/** Logs each call with its caller and remaining time: any Nest interceptor works. */
class LogCalls implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const ctx = context.switchToRpc().getContext<RabbitRpcContext>();
    const left =
      ctx.deadline === undefined ? 'no deadline' : `${ctx.deadline - Date.now()} ms left`;
    return next
      .handle()
      .pipe(
        tap(() => console.log(`${ctx.getPattern()} for ${ctx.userId ?? 'anonymous'}, ${left}`)),
      );
  }
}

interface Pair {
  a: number;
  b: number;
}

@Controller()
@UseInterceptors(LogCalls)
export class MathController {
  // Inputs arrive validated against the contract's zod schemas (the strategy has `service`).
  @MessagePattern('add')
  add(@Payload() { a, b }: Pair): number {
    return a + b;
  }

  @MessagePattern('divide')
  divide(@Payload() { a, b }: Pair): number {
    // A declared error of the contract: the client narrows it with isServiceError.
    if (b === 0)
      throw new RpcError('OUT_OF_RANGE', 'cannot divide by zero', { details: { divisor: b } });
    return a / b;
  }

  @MessagePattern('ping')
  ping(): 'pong' {
    return 'pong';
  }

  // A streaming method: each value of the Observable is one item of the stream. The
  // caller leaving early unsubscribes it.
  @MessagePattern('fibonacci')
  fibonacci(
    @Payload() { count }: { count: number },
    @Ctx() ctx: RabbitRpcContext,
  ): Observable<number> {
    let [a, b] = [0, 1];
    return interval(10).pipe(
      take(count),
      map(() => {
        const value = a;
        [a, b] = [b, a + b];
        return value;
      }),
      tap({
        unsubscribe: () => console.log(`fibonacci stopped early (${String(ctx.signal.aborted)})`),
      }),
    );
  }
}
