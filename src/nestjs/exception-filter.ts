import { Catch, type ArgumentsHost, type RpcExceptionFilter } from '@nestjs/common';
import { BaseRpcExceptionFilter } from '@nestjs/microservices';
import { throwError, type Observable } from 'rxjs';
import { RabbitRpcContext } from './context.js';
import { toRpcError } from './errors.js';

/**
 * Keeps what a handler threw for rabbit-rpc's error reply. Nest's default RPC filter
 * replaces every exception that is not an `RpcException` (an RpcError, an HTTP exception,
 * a ValidationPipe's BadRequestException) with "Internal server error" before a transport
 * sees it; this one maps it to an RpcError with a code instead (`toRpcError`). Requests of
 * other transports get Nest's default behaviour.
 *
 * Register it where the microservice's handlers see it: `microservice.useGlobalFilters(new
 * RabbitRpcExceptionFilter())` before `listen()`, `@UseFilters(RabbitRpcExceptionFilter)`, or
 * the app's global filters with `connectMicroservice(..., { inheritAppConfig: true })`.
 */
export class RabbitRpcExceptionFilter
  extends BaseRpcExceptionFilter
  implements RpcExceptionFilter<unknown>
{
  override catch(exception: unknown, host: ArgumentsHost): Observable<never> {
    if (host.getType() === 'rpc' && host.switchToRpc().getContext() instanceof RabbitRpcContext) {
      return throwError(() => toRpcError(exception));
    }
    return super.catch(exception, host) as Observable<never>;
  }
}
// Applied as a call, not with decorator syntax: the library compiles without
// experimentalDecorators. An empty list catches everything.
Catch()(RabbitRpcExceptionFilter);
