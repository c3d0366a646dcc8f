import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type TracerProvider,
} from '@opentelemetry/api';
import type { CallInterceptor, CallRequest, ServeInterceptor } from '../interceptors.js';
import {
  baseAttributes,
  errorCode,
  rpcMethod,
  SCOPE_NAME,
  type RpcInterceptors,
} from './shared.js';
import { checkOptionNames, optionNames } from '../option-names.js';

/** Options of {@link tracing}. */
export interface TracingOptions {
  /** Where spans go. @default the global tracer provider (`trace.setGlobalTracerProvider`) */
  tracerProvider?: TracerProvider;
  /**
   * How the trace context travels in message headers.
   * @default the global propagator (`propagation.setGlobalPropagator`); the OpenTelemetry
   *   Node SDK registers W3C Trace Context (`traceparent`, `tracestate`) and Baggage
   */
  propagator?: TextMapPropagator;
}

const OPTION_NAMES = optionNames({ tracerProvider: true, propagator: true } satisfies Record<
  keyof TracingOptions,
  true
>);

type OutgoingHeaders = CallRequest['headers'];

/** The exchange broadcasts are published to (a name of the wire protocol). */
const CONTROL_EXCHANGE = 'rabbit-rpc.control';
type IncomingHeaders = Readonly<Record<string, unknown>>;

const setter: TextMapSetter<OutgoingHeaders> = {
  set(carrier, key, value) {
    carrier[key] = value;
  },
};

const decoder = new TextDecoder();

/** A header value as text: AMQP tables may carry bytes or numbers where a string was meant. */
function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return decoder.decode(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  return undefined;
}

const getter: TextMapGetter<IncomingHeaders> = {
  keys(carrier) {
    return Object.keys(carrier);
  },
  get(carrier, key) {
    return headerText(carrier[key]);
  },
};

function succeed(span: Span): void {
  span.setAttribute('rpc.response.status_code', 'OK');
  span.end();
}

function fail(span: Span, error: unknown): void {
  const code = errorCode(error);
  span.setAttributes({ 'rpc.response.status_code': code, 'error.type': code });
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : code,
  });
  span.end();
}

/** Ends `span` when `run` settles, with the outcome; `run` runs with `ctx` active. */
function within<T>(span: Span, ctx: Context, run: () => Promise<T>): Promise<T> {
  let result: Promise<T>;
  try {
    result = context.with(ctx, run);
  } catch (error) {
    fail(span, error);
    throw error;
  }
  return result.then(
    (value) => {
      succeed(span);
      return value;
    },
    (error: unknown) => {
      fail(span, error);
      throw error;
    },
  );
}

/**
 * Tracing interceptors: a CLIENT span around every call (a stream from its request to its
 * end, a broadcast until its replies are in), a SERVER span around every request a server
 * handles, linked through the trace context the call carries in its message headers.
 * See docs/observability.md for the span names and attributes.
 *
 * @example
 * ```ts
 * import { tracing } from 'rabbit-rpc/otel';
 * const traced = tracing();
 * const rpc = await connect({ url, callInterceptors: [traced.call], serveInterceptors: [traced.serve] });
 * ```
 */
export function tracing(options: TracingOptions = {}): RpcInterceptors {
  checkOptionNames(options, OPTION_NAMES, 'tracing()');
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE_NAME);
  const propagator = options.propagator;
  const inject = (ctx: Context, headers: OutgoingHeaders): void => {
    if (propagator) propagator.inject(ctx, headers, setter);
    else propagation.inject(ctx, headers, setter);
  };
  const extract = (headers: IncomingHeaders): Context =>
    propagator
      ? propagator.extract(ROOT_CONTEXT, headers, getter)
      : propagation.extract(ROOT_CONTEXT, headers, getter);

  const call: CallInterceptor = (next) => (request) => {
    const attributes = baseAttributes(request.queue, request.method);
    attributes['messaging.system'] = 'rabbitmq';
    attributes['messaging.operation.type'] = 'send';
    attributes['messaging.operation.name'] = request.kind === 'unary' ? 'call' : request.kind;
    // Requests go through the default exchange, the queue name as routing key; broadcasts
    // through the control exchange (docs/protocol.md, "Control messages").
    attributes['messaging.destination.name'] = request.kind === 'broadcast' ? CONTROL_EXCHANGE : '';
    attributes['messaging.rabbitmq.destination.routing_key'] = request.queue;
    const parent = context.active();
    const span = tracer.startSpan(
      rpcMethod(request.queue, request.method),
      { kind: SpanKind.CLIENT, attributes },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    try {
      inject(ctx, request.headers);
    } catch {
      // A broken propagator costs the link between the spans, never the call.
    }
    return within(span, ctx, () => next(request));
  };

  const serve: ServeInterceptor = (next) => (request, handlerContext) => {
    let parent: Context;
    try {
      parent = extract(handlerContext.headers);
    } catch {
      parent = ROOT_CONTEXT;
    }
    const attributes: Attributes = baseAttributes(handlerContext.queue, handlerContext.method);
    attributes['messaging.system'] = 'rabbitmq';
    attributes['messaging.operation.type'] = 'process';
    attributes['messaging.operation.name'] = 'process';
    attributes['messaging.destination.name'] = handlerContext.queue;
    if (handlerContext.correlationId !== undefined) {
      attributes['messaging.message.conversation_id'] = handlerContext.correlationId;
    }
    if (handlerContext.messageId !== undefined) {
      attributes['messaging.message.id'] = handlerContext.messageId;
    }
    const span = tracer.startSpan(
      rpcMethod(handlerContext.queue, handlerContext.method),
      { kind: SpanKind.SERVER, attributes },
      parent,
    );
    return within(span, trace.setSpan(parent, span), () => next(request, handlerContext));
  };

  return { call, serve };
}
