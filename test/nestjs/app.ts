// A Nest application served over rabbit-rpc, used by the tests of this folder. Everything
// here is ordinary Nest: decorators, DI, guards, pipes, interceptors, filters.
import 'reflect-metadata';
import { EventEmitter } from 'node:events';
import {
  Catch,
  Controller,
  HttpException,
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  UnauthorizedException,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { IsInt, Max } from 'class-validator';
import { interval, map, of, take, throwError, type Observable } from 'rxjs';
import { RpcError } from '../../src/index.js';
import { RabbitRpcClient, RabbitRpcContext, RabbitRpcModule } from '../../src/nestjs/index.js';

/** What handlers report to the tests, which await these events instead of sleeping. */
export const probe = new EventEmitter();

export class AddDto {
  @IsInt()
  a!: number;

  @IsInt()
  @Max(1000)
  b!: number;
}

@Injectable()
export class Adder {
  add(a: number, b: number): number {
    return a + b;
  }
}

@Injectable()
class DenyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const data = context.switchToRpc().getData<{ token?: string }>();
    if (data.token === undefined) throw new UnauthorizedException('no token');
    return data.token === 'open sesame';
  }
}

@Injectable()
class DoubleInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler<number>): Observable<number> {
    return next.handle().pipe(map((value) => value * 2));
  }
}

class DomainError extends Error {}

@Catch(DomainError)
class DomainErrorFilter implements ExceptionFilter {
  catch(exception: DomainError): Observable<never> {
    return throwError(
      () =>
        new RpcException({ code: 'FAILED_PRECONDITION', message: `domain: ${exception.message}` }),
    );
  }
}

/** The token of the RabbitRpcClient that the nested-call handler uses. */
export const SELF = 'SELF_CLIENT';

@Controller()
export class MathController {
  constructor(
    private readonly adder: Adder,
    @Inject(SELF) private readonly self: RabbitRpcClient,
  ) {}

  @MessagePattern('add')
  add(@Payload() { a, b }: { a: number; b: number }): number {
    return this.adder.add(a, b);
  }

  @MessagePattern({ cmd: 'sum' })
  sum(@Payload() numbers: number[]): number {
    return numbers.reduce((x, y) => x + y, 0);
  }

  @MessagePattern('context')
  context(@Ctx() ctx: RabbitRpcContext): Record<string, unknown> {
    return {
      deadline: ctx.deadline ?? null,
      header: ctx.headers['x-test'] ?? null,
      correlationId: ctx.correlationId ?? null,
      userId: ctx.userId ?? null,
      pattern: ctx.getPattern(),
      queue: ctx.queue,
      wire: ctx.wire,
      aborted: ctx.signal.aborted,
    };
  }

  @MessagePattern('slow')
  async slow(@Payload() tag: string, @Ctx() ctx: RabbitRpcContext): Promise<string> {
    probe.emit(`started:${tag}`);
    await new Promise<void>((resolve) => {
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      probe.once(`finish:${tag}`, resolve);
    });
    if (ctx.signal.aborted) {
      probe.emit(`aborted:${tag}`, ctx.signal.reason);
      throw ctx.signal.reason;
    }
    return `done:${tag}`;
  }

  @MessagePattern('nested')
  nested(@Ctx() ctx: RabbitRpcContext): Observable<unknown> {
    return this.self.send('context', null, { parent: ctx });
  }

  @MessagePattern('fail.rpc')
  failRpc(): never {
    throw new RpcException({ code: 'NOT_FOUND', message: 'no such user', details: { id: 7 } });
  }

  @MessagePattern('fail.rpcerror')
  failRpcError(): never {
    throw new RpcError('ALREADY_EXISTS', 'user 7 exists', { details: { id: 7 } });
  }

  @MessagePattern('fail.http')
  failHttp(@Payload() status: number): never {
    throw new HttpException(`status ${status}`, status);
  }

  @MessagePattern('fail.plain')
  failPlain(): never {
    throw new Error('plain failure');
  }

  @UseFilters(DomainErrorFilter)
  @MessagePattern('fail.domain')
  failDomain(): never {
    throw new DomainError('locked');
  }

  @UsePipes(new ValidationPipe())
  @MessagePattern('validated')
  validated(@Payload() dto: AddDto): number {
    return dto.a + dto.b;
  }

  @UseGuards(DenyGuard)
  @MessagePattern('guarded')
  guarded(): string {
    return 'welcome';
  }

  @UseInterceptors(DoubleInterceptor)
  @MessagePattern('intercepted')
  intercepted(@Payload() n: number): number {
    return n + 1;
  }

  @MessagePattern('count')
  count(@Payload() n: number): Observable<number> {
    return n === 0
      ? of()
      : interval(1).pipe(
          take(n),
          map((i) => i + 1),
        );
  }

  // <string>: Nest 12 types a string event pattern's handler as (data, ...args: unknown[]),
  // which refuses a typed @Ctx() parameter; the explicit type argument picks the plain overload.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-arguments -- see above
  @EventPattern<string>('audit')
  audit(@Payload() data: unknown, @Ctx() ctx: RabbitRpcContext): void {
    probe.emit('audit', data, ctx.wire);
  }
}

/** The app module, its RabbitRpcClient pointed at `queue` (the strategy's own queue). */
export function mathModule(url: string, queue: string): DynamicModule {
  return {
    module: MathModule,
    imports: [RabbitRpcModule.forRoot({ connection: url, clients: [{ name: SELF, queue }] })],
    controllers: [MathController],
    providers: [Adder],
  };
}

@Module({})
export class MathModule {}
