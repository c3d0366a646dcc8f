import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  context,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type TextMapPropagator,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import {
  defineService,
  method,
  RpcError,
  type HandlerContext,
  type RpcConnection,
} from '../../src/index.js';
import { tracing } from '../../src/otel/index.js';
import {
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
  uniqueServiceName,
} from '../helpers.js';

failOnUnhandled();

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

before(() => {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager.enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});

after(async () => {
  trace.disable();
  context.disable();
  propagation.disable();
  await provider.shutdown();
});

/** A connection whose calls and servers are traced with the global tracer and propagator. */
async function tracedConnection(): Promise<RpcConnection> {
  const traced = tracing();
  return connectForTest({ callInterceptors: [traced.call], serveInterceptors: [traced.serve] });
}

/** The finished spans named `name` (the queue, or queue/method), client first. */
async function spansNamed(name: string): Promise<{
  client: ReadableSpan[];
  server: ReadableSpan[];
}> {
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans().filter((span) => span.name === name);
  return {
    client: spans.filter((span) => span.kind === SpanKind.CLIENT),
    server: spans.filter((span) => span.kind === SpanKind.SERVER),
  };
}

/** The one client and the one server span of a call. */
async function spanPair(name: string): Promise<{ client: ReadableSpan; server: ReadableSpan }> {
  const { client, server } = await spansNamed(name);
  assert.equal(client.length, 1, 'exactly one client span');
  assert.equal(server.length, 1, 'exactly one server span');
  const [clientSpan] = client;
  const [serverSpan] = server;
  assert.ok(clientSpan && serverSpan);
  return { client: clientSpan, server: serverSpan };
}

describe('tracing', () => {
  test('one call yields a client span and a server span of the same trace, linked through the headers', async () => {
    const rpc = await tracedConnection();
    const queue = uniqueQueue('otel-trace');
    let seenHeader: unknown;
    let activeInHandler: string | undefined;
    await rpc.serve(queue, (request: string, ctx) => {
      seenHeader = ctx.headers['traceparent'];
      activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
      return `Processed: ${request}`;
    });
    assert.equal(await rpc.call(queue, 'hi'), 'Processed: hi');

    const { client, server } = await spanPair(queue);
    const clientContext = client.spanContext();
    const serverContext = server.spanContext();
    assert.equal(serverContext.traceId, clientContext.traceId);
    assert.equal(server.parentSpanContext?.spanId, clientContext.spanId);
    assert.equal(server.parentSpanContext.isRemote, true);
    assert.equal(client.parentSpanContext, undefined, 'no active span: the client span is a root');
    assert.equal(seenHeader, `00-${clientContext.traceId}-${clientContext.spanId}-01`);
    assert.equal(activeInHandler, serverContext.spanId, 'the handler runs inside the server span');

    assert.deepEqual(client.attributes, {
      'rpc.system.name': 'rabbit-rpc',
      'rpc.method': queue,
      'rpc.response.status_code': 'OK',
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'send',
      'messaging.operation.name': 'call',
      'messaging.destination.name': '',
      'messaging.rabbitmq.destination.routing_key': queue,
    });
    const conversationId = server.attributes['messaging.message.conversation_id'];
    const messageId = server.attributes['messaging.message.id'];
    assert.equal(typeof conversationId, 'string');
    assert.equal(typeof messageId, 'string');
    assert.deepEqual(server.attributes, {
      'rpc.system.name': 'rabbit-rpc',
      'rpc.method': queue,
      'rpc.response.status_code': 'OK',
      'messaging.system': 'rabbitmq',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': queue,
      'messaging.message.conversation_id': conversationId,
      'messaging.message.id': messageId,
    });
    assert.equal(client.status.code, SpanStatusCode.UNSET);
    assert.equal(server.status.code, SpanStatusCode.UNSET);
    assert.equal(client.instrumentationScope.name, 'rabbit-rpc');
  });

  test('an error reply gives ERROR status and error.type = the code on both spans', async () => {
    const rpc = await tracedConnection();
    const queue = uniqueQueue('otel-trace-error');
    await rpc.serve(queue, () => {
      throw new RpcError('NOT_FOUND', 'no such thing');
    });
    await assert.rejects(rpc.call(queue, null), { code: 'NOT_FOUND' });

    const { client, server } = await spanPair(queue);
    for (const span of [client, server]) {
      assert.equal(span.status.code, SpanStatusCode.ERROR);
      assert.equal(span.status.message, 'no such thing');
      assert.equal(span.attributes['error.type'], 'NOT_FOUND');
      assert.equal(span.attributes['rpc.response.status_code'], 'NOT_FOUND');
    }
    assert.equal(server.parentSpanContext?.spanId, client.spanContext().spanId);
  });

  test('a handler throwing a plain Error is UNKNOWN on both sides', async () => {
    const rpc = await tracedConnection();
    const queue = uniqueQueue('otel-trace-unknown');
    await rpc.serve(queue, () => {
      throw new TypeError('bug');
    });
    await assert.rejects(rpc.call(queue, null), { code: 'UNKNOWN' });
    const { client, server } = await spanPair(queue);
    assert.equal(client.attributes['error.type'], 'UNKNOWN');
    assert.equal(server.attributes['error.type'], 'UNKNOWN');
    assert.equal(server.status.code, SpanStatusCode.ERROR);
  });

  test('a call that fails before any server sees it has only a client span, with its code', async () => {
    const rpc = await tracedConnection();
    const missing = uniqueQueue('otel-trace-missing');
    await assert.rejects(rpc.call(missing, null, { timeoutMs: 5_000 }), { code: 'UNAVAILABLE' });
    const { client, server } = await spansNamed(missing);
    assert.equal(server.length, 0);
    const [span] = client;
    assert.ok(span && client.length === 1);
    assert.equal(span.attributes['error.type'], 'UNAVAILABLE');
    assert.equal(span.status.code, SpanStatusCode.ERROR);
  });

  test('a call made inside an active span gets a client span that is its child', async () => {
    const rpc = await tracedConnection();
    const queue = uniqueQueue('otel-trace-parent');
    await rpc.serve(queue, () => 'ok');
    const tracer = trace.getTracer('test');
    const parent = await tracer.startActiveSpan('parent', async (span) => {
      try {
        await rpc.call(queue, null);
        return span.spanContext();
      } finally {
        span.end();
      }
    });
    const { client, server } = await spanPair(queue);
    assert.equal(client.spanContext().traceId, parent.traceId);
    assert.equal(client.parentSpanContext?.spanId, parent.spanId);
    assert.equal(server.spanContext().traceId, parent.traceId);
    assert.equal(server.parentSpanContext?.spanId, client.spanContext().spanId);
  });

  test('a server span does not inherit the context active when the server was set up', async () => {
    const queue = uniqueQueue('otel-trace-serve-context');
    const tracer = trace.getTracer('test');
    // Connected and served inside a span: the socket's callbacks run in that context.
    await tracer.startActiveSpan('setup', async (span) => {
      const rpc = await tracedConnection();
      await rpc.serve(queue, () => 'ok');
      span.end();
    });
    // A caller without tracing: no trace context in the request.
    const plain = await connectForTest();
    await plain.call(queue, null);
    const { client, server } = await spansNamed(queue);
    assert.equal(client.length, 0);
    assert.equal(server.length, 1);
    assert.equal(server[0]?.parentSpanContext, undefined, 'a root span, not a child of "setup"');
  });

  test('service calls are named queue/method', async () => {
    const rpc = await tracedConnection();
    const name = uniqueServiceName('otel-svc');
    const service = defineService(name, { ping: method<undefined, 'pong'>() });
    await rpc.serve(service, { ping: () => 'pong' });
    assert.equal(await rpc.client(service).ping(), 'pong');
    const spanName = `${service.queue}/ping`;
    const { client, server } = await spanPair(spanName);
    assert.equal(client.attributes['rpc.method'], spanName);
    assert.equal(server.attributes['rpc.method'], spanName);
    assert.equal(client.attributes['messaging.rabbitmq.destination.routing_key'], service.queue);
  });

  test('a stream has a client span from its request to its end, parent of the server span', async () => {
    const rpc = await tracedConnection();
    const queue = uniqueQueue('otel-trace-stream');
    const release = deferred();
    await rpc.serve(queue, async function* (_request: unknown, ctx) {
      yield ctx.headers['traceparent'];
      await release.promise;
      yield 'last';
    });
    const items: unknown[] = [];
    for await (const item of rpc.stream(queue, null)) {
      items.push(item);
      if (items.length === 1) {
        // In the middle of the stream: the client span is still open.
        assert.equal((await spansNamed(queue)).client.length, 0, 'the client span is open');
        release.resolve();
      }
    }
    const { client, server } = await spanPair(queue);
    const clientContext = client.spanContext();
    assert.deepEqual(items, [`00-${clientContext.traceId}-${clientContext.spanId}-01`, 'last']);
    assert.equal(server.parentSpanContext?.spanId, clientContext.spanId);
    assert.equal(client.attributes['messaging.operation.name'], 'stream');
    assert.equal(client.attributes['messaging.destination.name'], '');
    assert.equal(client.attributes['rpc.response.status_code'], 'OK');
  });

  test('a stream that fails ends its client span with the code', async () => {
    const rpc = await tracedConnection();
    const queue = uniqueQueue('otel-trace-stream-error');
    // eslint-disable-next-line @typescript-eslint/require-await -- the handler shape of a stream
    await rpc.serve(queue, async function* () {
      yield 1;
      throw new RpcError('OUT_OF_RANGE', 'no more');
    });
    const items: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of rpc.stream(queue, null)) items.push(item);
      })(),
      { code: 'OUT_OF_RANGE' },
    );
    assert.deepEqual(items, [1]);
    const { client } = await spansNamed(queue);
    const [span] = client;
    assert.ok(span && client.length === 1, 'one client span');
    assert.equal(span.status.code, SpanStatusCode.ERROR);
    assert.equal(span.attributes['error.type'], 'OUT_OF_RANGE');
  });

  test("a broadcast has a client span, parent of every instance's server span", async () => {
    const rpc = await tracedConnection();
    const other = await tracedConnection();
    const queue = uniqueQueue('otel-trace-broadcast');
    await rpc.serve(queue, () => 'one');
    await other.serve(queue, () => 'two');
    const replies = await rpc.broadcast(queue, null, { max: 2, timeoutMs: 10_000 });
    assert.deepEqual(replies.map((reply) => reply.ok && reply.reply).sort(), ['one', 'two']);
    const { client, server } = await spansNamed(queue);
    assert.equal(client.length, 1, 'one client span');
    assert.equal(server.length, 2, 'one server span per instance');
    const [clientSpan] = client;
    assert.ok(clientSpan);
    for (const span of server) {
      assert.equal(span.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
      assert.equal(span.spanContext().traceId, clientSpan.spanContext().traceId);
    }
    assert.equal(clientSpan.attributes['messaging.operation.name'], 'broadcast');
    assert.equal(clientSpan.attributes['messaging.destination.name'], 'rabbit-rpc.control');
    assert.equal(clientSpan.attributes['messaging.rabbitmq.destination.routing_key'], queue);
  });

  test('a given tracer provider and propagator are used instead of the global ones', async () => {
    const ownExporter = new InMemorySpanExporter();
    const ownProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(ownExporter)],
    });
    after(() => ownProvider.shutdown());
    const w3c = new W3CTraceContextPropagator();
    // The W3C format under another header name, to see which propagator ran.
    const renamed: TextMapPropagator = {
      inject(ctx, carrier, setter) {
        w3c.inject(ctx, carrier, { set: (c, key, value) => setter.set(c, `x-${key}`, value) });
      },
      extract(ctx, carrier, getter) {
        return w3c.extract(ctx, carrier, {
          keys: (c) => getter.keys(c),
          get: (c, key) => getter.get(c, `x-${key}`),
        });
      },
      fields: () => ['x-traceparent', 'x-tracestate'],
    };
    const traced = tracing({ tracerProvider: ownProvider, propagator: renamed });
    const rpc = await connectForTest({
      callInterceptors: [traced.call],
      serveInterceptors: [traced.serve],
    });
    const queue = uniqueQueue('otel-trace-own');
    let headers: HandlerContext['headers'] = {};
    await rpc.serve(queue, (_request, ctx) => {
      headers = ctx.headers;
      return 'ok';
    });
    await rpc.call(queue, null);
    assert.equal(typeof headers['x-traceparent'], 'string');
    assert.equal(headers['traceparent'], undefined);
    assert.equal((await spansNamed(queue)).client.length, 0, 'nothing in the global provider');
    const spans = ownExporter.getFinishedSpans().filter((span) => span.name === queue);
    const client = spans.find((span) => span.kind === SpanKind.CLIENT);
    const server = spans.find((span) => span.kind === SpanKind.SERVER);
    assert.ok(client && server);
    assert.equal(server.parentSpanContext?.spanId, client.spanContext().spanId);
  });
});

describe('tracing: trace context in odd header values', () => {
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const spanId = 'b7ad6b7169203331';
  const traceparent = `00-${traceId}-${spanId}-01`;

  /** Runs the server interceptor alone with these request headers; returns the server span. */
  async function serveWith(headers: Record<string, unknown>): Promise<ReadableSpan> {
    const queue = `otel-unit-${Math.random().toString(16).slice(2)}`;
    const ctx: HandlerContext = {
      signal: new AbortController().signal,
      deadline: undefined,
      headers,
      correlationId: 'c-1',
      messageId: 'm-1',
      redelivered: false,
      queue,
      method: undefined,
      userId: undefined,
    };
    const handled = tracing().serve(() => Promise.resolve('done'));
    assert.equal(await handled(null, ctx), 'done');
    const { server } = await spansNamed(queue);
    assert.equal(server.length, 1);
    const [span] = server;
    assert.ok(span);
    assert.equal(span.attributes['messaging.message.id'], 'm-1');
    assert.equal(span.attributes['messaging.message.conversation_id'], 'c-1');
    return span;
  }

  test('a traceparent sent as bytes (AMQP byte array or longstr) is decoded', async () => {
    const span = await serveWith({ traceparent: new TextEncoder().encode(traceparent) });
    assert.equal(span.spanContext().traceId, traceId);
    assert.equal(span.parentSpanContext?.spanId, spanId);
  });

  test('a string traceparent is used as it is', async () => {
    const span = await serveWith({ traceparent, tracestate: 'vendor=1' });
    assert.equal(span.parentSpanContext?.spanId, spanId);
    assert.equal(span.parentSpanContext.traceState?.get('vendor'), '1');
  });

  test('non-text values, garbage and missing headers give a root span, never an error', async () => {
    for (const headers of [
      { traceparent: { nested: true } },
      { traceparent: 42 },
      { traceparent: null },
      { traceparent: 'not-a-traceparent' },
      {},
    ]) {
      const span = await serveWith(headers);
      assert.equal(span.parentSpanContext, undefined, JSON.stringify(headers));
    }
  });
});
