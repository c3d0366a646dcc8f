import assert from 'node:assert/strict';
import { after } from 'node:test';
import type { Attributes } from '@opentelemetry/api';
import {
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { metrics, type RpcMetrics } from '../../src/otel/index.js';

/** A reader that collects when asked: no exporter, no timer. */
class OnDemandReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A meter provider of its own, read on demand, and the metrics interceptors on it. */
export function measured(): { measure: RpcMetrics; read: () => Promise<MetricData[]> } {
  const reader = new OnDemandReader();
  const provider = new MeterProvider({ readers: [reader] });
  after(() => provider.shutdown());
  const read = async () => {
    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, []);
    return resourceMetrics.scopeMetrics.flatMap((scope) => {
      assert.equal(scope.scope.name, 'rabbit-rpc');
      return scope.metrics;
    });
  };
  return { measure: metrics({ meterProvider: provider }), read };
}

/** The data points of `name` whose attributes include `match`. */
export function points<T>(
  metricsData: MetricData[],
  name: string,
  match: Attributes,
): Array<DataPoint<T> & { attributes: Attributes }> {
  const metric = metricsData.find((data) => data.descriptor.name === name);
  assert.ok(metric, `no metric ${name}`);
  return (metric.dataPoints as Array<DataPoint<T>>).filter((point) =>
    Object.entries(match).every(([key, value]) => point.attributes[key] === value),
  );
}

/** The sum of the counter / up-down counter `name` over the points matching `match` (one at least). */
export function total(metricsData: MetricData[], name: string, match: Attributes): number {
  const matching = points<number>(metricsData, name, match);
  assert.ok(matching.length > 0, `no ${name} point with ${JSON.stringify(match)}`);
  return matching.reduce((sum, point) => sum + point.value, 0);
}

/** The histogram count of `name` over the points matching `match` (one at least). */
export function count(metricsData: MetricData[], name: string, match: Attributes): number {
  const matching = points<Histogram>(metricsData, name, match);
  assert.ok(matching.length > 0, `no ${name} point with ${JSON.stringify(match)}`);
  return matching.reduce((sum, point) => sum + point.value.count, 0);
}
