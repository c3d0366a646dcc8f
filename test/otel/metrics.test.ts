import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DataPointType, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { defineService, method, RpcError, type RpcConnection } from '../../src/index.js';
import { DURATION_BUCKETS } from '../../src/otel/index.js';
import {
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
  uniqueServiceName,
} from '../helpers.js';
import { count, measured, points, total } from './otel-helpers.js';

failOnUnhandled();

async function measuredConnection(): Promise<{
  rpc: RpcConnection;
  read: () => Promise<MetricData[]>;
}> {
  const { measure, read } = measured();
  const rpc = await connectForTest({
    callInterceptors: [measure.call],
    serveInterceptors: [measure.serve],
  });
  return { rpc, read };
}

describe('metrics', () => {
  test('calls, errors by code, durations and in-flight counts on both sides', async () => {
    const { rpc, read } = await measuredConnection();
    const queue = uniqueQueue('otel-metrics');
    await rpc.serve(queue, (request: number) => {
      if (request < 0) throw new RpcError('INVALID_ARGUMENT', 'negative');
      if (request === 0) throw new Error('a bug');
      return request * 2;
    });
    for (const n of [1, 2, 3]) assert.equal(await rpc.call(queue, n), n * 2);
    await assert.rejects(rpc.call(queue, -1), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(rpc.call(queue, -2), { code: 'INVALID_ARGUMENT' });
    await assert.rejects(rpc.call(queue, 0), { code: 'UNKNOWN' });

    const data = await read();
    const labels = { 'rpc.method': queue, 'rpc.system.name': 'rabbit-rpc' };
    for (const side of ['client', 'server'] as const) {
      assert.equal(total(data, `rabbit_rpc.${side}.calls`, labels), 6, side);
      assert.equal(total(data, `rabbit_rpc.${side}.active_calls`, labels), 0, side);
      assert.equal(
        total(data, `rabbit_rpc.${side}.errors`, { ...labels, 'error.type': 'INVALID_ARGUMENT' }),
        2,
        side,
      );
      assert.equal(
        total(data, `rabbit_rpc.${side}.errors`, { ...labels, 'error.type': 'UNKNOWN' }),
        1,
        side,
      );
      assert.equal(total(data, `rabbit_rpc.${side}.errors`, labels), 3, side);
      const duration = `rpc.${side}.call.duration`;
      assert.equal(count(data, duration, labels), 6, side);
      assert.equal(count(data, duration, { ...labels, 'rpc.response.status_code': 'OK' }), 3);
      assert.equal(
        count(data, duration, {
          ...labels,
          'rpc.response.status_code': 'INVALID_ARGUMENT',
          'error.type': 'INVALID_ARGUMENT',
        }),
        2,
      );
      const ok = points<Histogram>(data, duration, {
        ...labels,
        'rpc.response.status_code': 'OK',
      });
      assert.equal(ok.length, 1);
      assert.equal(ok[0]?.attributes['error.type'], undefined, 'no error.type on success');
    }
    const duration = data.find((metric) => metric.descriptor.name === 'rpc.client.call.duration');
    assert.equal(duration?.descriptor.unit, 's');
    assert.equal(duration.dataPointType, DataPointType.HISTOGRAM);
    const [point] = points<Histogram>(data, 'rpc.client.call.duration', labels);
    assert.deepEqual(point?.value.buckets.boundaries, DURATION_BUCKETS);
  });

  test('durations are in seconds and cover the handler', async () => {
    const { rpc, read } = await measuredConnection();
    const queue = uniqueQueue('otel-metrics-slow');
    await rpc.serve(queue, async () => {
      // The handler's own work: 50 ms.
      await new Promise((resolve) => setTimeout(resolve, 50));
      return 'done';
    });
    await rpc.call(queue, null);
    const data = await read();
    for (const side of ['client', 'server']) {
      const [point] = points<Histogram>(data, `rpc.${side}.call.duration`, {
        'rpc.method': queue,
      });
      assert.ok(point);
      assert.equal(point.value.count, 1);
      // setTimeout may fire a millisecond early; the upper bound allows a slow machine.
      assert.ok(point.value.sum !== undefined && point.value.sum >= 0.045, `${side} sum`);
      assert.ok(point.value.sum < 5, `${side}: seconds, not milliseconds`);
    }
  });

  test('calls in flight count up while the call runs and go back to 0', async () => {
    const { rpc, read } = await measuredConnection();
    const queue = uniqueQueue('otel-metrics-inflight');
    const started = deferred();
    const release = deferred();
    await rpc.serve(queue, async () => {
      started.resolve();
      await release.promise;
      return 'ok';
    });
    const call = rpc.call(queue, null);
    await started.promise;
    const during = await read();
    const labels = { 'rpc.method': queue };
    assert.equal(total(during, 'rabbit_rpc.client.active_calls', labels), 1);
    assert.equal(total(during, 'rabbit_rpc.server.active_calls', labels), 1);
    release.resolve();
    assert.equal(await call, 'ok');
    const afterwards = await read();
    assert.equal(total(afterwards, 'rabbit_rpc.client.active_calls', labels), 0);
    assert.equal(total(afterwards, 'rabbit_rpc.server.active_calls', labels), 0);
  });

  test('a call that fails on the client side only counts there, with its code', async () => {
    const { rpc, read } = await measuredConnection();
    const missing = uniqueQueue('otel-metrics-missing');
    await assert.rejects(rpc.call(missing, null), { code: 'UNAVAILABLE' });
    const data = await read();
    const labels = { 'rpc.method': missing };
    assert.equal(total(data, 'rabbit_rpc.client.calls', labels), 1);
    assert.equal(
      total(data, 'rabbit_rpc.client.errors', { ...labels, 'error.type': 'UNAVAILABLE' }),
      1,
    );
    assert.equal(total(data, 'rabbit_rpc.client.active_calls', labels), 0);
    const serverCalls = data.find((metric) => metric.descriptor.name === 'rabbit_rpc.server.calls');
    assert.equal(serverCalls?.dataPoints.length ?? 0, 0, 'no server saw it');
  });

  test("service calls are measured per queue/method; serve()'s own interceptors work too", async () => {
    const { measure, read } = measured();
    const rpc = await connectForTest({ callInterceptors: [measure.call] });
    const name = uniqueServiceName('otel-metrics-svc');
    const service = defineService(name, { ping: method<undefined, 'pong'>() });
    await rpc.serve(service, { ping: () => 'pong' }, { interceptors: [measure.serve] });
    assert.equal(await rpc.client(service).ping(), 'pong');
    const data = await read();
    const match = { 'rpc.method': `${service.queue}/ping` };
    assert.equal(total(data, 'rabbit_rpc.client.calls', match), 1);
    assert.equal(total(data, 'rabbit_rpc.server.calls', match), 1);
    assert.equal(count(data, 'rpc.server.call.duration', match), 1);
  });
});
