import {
  metrics as metricsApi,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type UpDownCounter,
} from '@opentelemetry/api';
import type { RpcConnection } from '../index.js';
import type { CallInterceptor, ServeInterceptor } from '../interceptors.js';
import { baseAttributes, errorCode, SCOPE_NAME, type RpcInterceptors } from './shared.js';
import { checkOptionNames, optionNames } from '../option-names.js';

/** Options of {@link metrics}. */
export interface MetricsOptions {
  /** Where measurements go. @default the global meter provider (`metrics.setGlobalMeterProvider`) */
  meterProvider?: MeterProvider;
}

const OPTION_NAMES = optionNames({ meterProvider: true } satisfies Record<
  keyof MetricsOptions,
  true
>);

/** The interceptors of {@link metrics}, and `observe` for connection-level counters. */
export interface RpcMetrics extends RpcInterceptors {
  /**
   * Counts the reconnects of `rpc` (`rabbit_rpc.connection.reconnects`) from now on.
   * Returns a function that stops observing; it also stops when the connection closes.
   */
  observe(rpc: RpcConnection): () => void;
}

/**
 * Histogram buckets in seconds: the RPC and messaging conventions' advice
 * (5 ms to 10 s), with 0.5, 1 and 2.5 ms in front, where calls over a nearby broker land.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** The instruments of one side (client or server). */
interface SideInstruments {
  readonly started: Counter;
  readonly errors: Counter;
  readonly active: UpDownCounter;
  readonly duration: Histogram;
}

function sideInstruments(meter: Meter, side: 'client' | 'server'): SideInstruments {
  const what = side === 'client' ? 'calls made' : 'requests handled';
  return {
    started: meter.createCounter(`rabbit_rpc.${side}.calls`, {
      unit: '{call}',
      description: `Number of ${what}, counted when they start.`,
    }),
    errors: meter.createCounter(`rabbit_rpc.${side}.errors`, {
      unit: '{call}',
      description: `Number of ${what} that ended with an error, by error.type (the RpcError code).`,
    }),
    active: meter.createUpDownCounter(`rabbit_rpc.${side}.active_calls`, {
      unit: '{call}',
      description: `Number of ${what} in flight.`,
    }),
    duration: meter.createHistogram(`rpc.${side}.call.duration`, {
      unit: 's',
      description:
        side === 'client'
          ? 'Duration of calls, from the call to its reply or error.'
          : 'Duration of request handling, around the handler.',
      advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
    }),
  };
}

/** Measures one call or request: counts it, times it, and records its outcome. */
function measure<T>(
  instruments: SideInstruments,
  attributes: Attributes,
  run: () => Promise<T>,
): Promise<T> {
  const { started, errors, active, duration } = instruments;
  started.add(1, attributes);
  active.add(1, attributes);
  const start = performance.now();
  const settle = (error: unknown, failed: boolean): void => {
    active.add(-1, attributes);
    const seconds = (performance.now() - start) / 1000;
    if (failed) {
      const code = errorCode(error);
      const outcome = { ...attributes, 'rpc.response.status_code': code, 'error.type': code };
      duration.record(seconds, outcome);
      errors.add(1, outcome);
    } else {
      duration.record(seconds, { ...attributes, 'rpc.response.status_code': 'OK' });
    }
  };
  let result: Promise<T>;
  try {
    result = run();
  } catch (error) {
    settle(error, true);
    throw error;
  }
  return result.then(
    (value) => {
      settle(undefined, false);
      return value;
    },
    (error: unknown) => {
      settle(error, true);
      throw error;
    },
  );
}

/** `server.address` and `server.port` of a connection's broker, from its (redacted) URL. */
function brokerAttributes(rpc: RpcConnection): Attributes {
  try {
    const url = new URL(rpc.url);
    const secure = url.protocol === 'amqps:';
    return {
      'server.address': url.hostname,
      'server.port': url.port === '' ? (secure ? 5671 : 5672) : Number(url.port),
    };
  } catch {
    return {};
  }
}

/**
 * Metrics interceptors through the OpenTelemetry metrics API: calls started, errors by
 * code, duration histograms and calls in flight, on both sides; `observe(rpc)` adds the
 * reconnects of a connection. See docs/observability.md for the instruments.
 *
 * @example
 * ```ts
 * import { metrics } from 'rabbit-rpc/otel';
 * const measured = metrics();
 * const rpc = await connect({ url, callInterceptors: [measured.call], serveInterceptors: [measured.serve] });
 * measured.observe(rpc);
 * ```
 */
export function metrics(options: MetricsOptions = {}): RpcMetrics {
  checkOptionNames(options, OPTION_NAMES, 'metrics()');
  const meter = (options.meterProvider ?? metricsApi.getMeterProvider()).getMeter(SCOPE_NAME);
  const client = sideInstruments(meter, 'client');
  const server = sideInstruments(meter, 'server');
  const reconnects = meter.createCounter('rabbit_rpc.connection.reconnects', {
    unit: '{reconnect}',
    description: 'Number of times a connection came back after a loss.',
  });

  const call: CallInterceptor = (next) => (request) =>
    measure(client, baseAttributes(request.queue, request.method), () => next(request));

  const serve: ServeInterceptor = (next) => (request, ctx) =>
    measure(server, baseAttributes(ctx.queue, ctx.method), () => next(request, ctx));

  const observe = (rpc: RpcConnection): (() => void) => {
    const attributes = brokerAttributes(rpc);
    let seen = rpc.stats().reconnects;
    const stop = rpc.onStateChange((state) => {
      const now = rpc.stats().reconnects;
      if (now > seen) {
        reconnects.add(now - seen, attributes);
        seen = now;
      }
      if (state === 'closed') stop();
    });
    return () => {
      stop();
    };
  };

  return { call, serve, observe };
}
