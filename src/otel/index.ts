/**
 * OpenTelemetry tracing and metrics for rabbit-rpc, as call and serve interceptors. Needs
 * `@opentelemetry/api` (an optional peer dependency of rabbit-rpc); the main entry never
 * loads it.
 *
 * ```ts
 * import { connect } from 'rabbit-rpc';
 * import { metrics, tracing } from 'rabbit-rpc/otel';
 * const traced = tracing();
 * const measured = metrics();
 * const rpc = await connect({
 *   url,
 *   callInterceptors: [traced.call, measured.call],
 *   serveInterceptors: [traced.serve, measured.serve],
 * });
 * measured.observe(rpc);
 * ```
 * @packageDocumentation
 */
export { tracing } from './tracing.js';
export type { TracingOptions } from './tracing.js';
export { metrics, DURATION_BUCKETS } from './metrics.js';
export type { MetricsOptions, RpcMetrics } from './metrics.js';
export type { RpcInterceptors } from './shared.js';
