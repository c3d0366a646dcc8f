// The ui server's API on the real broker (issue 18): the token, the Host and Origin checks,
// the bounds, calls (contract methods and raw queues), broadcasts, streams and their
// cancellation, and that the broker's credentials appear nowhere.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RpcError } from '../../src/index.js';
import { brokerLabel } from '../../src/cli/ui.js';
import type {
  BroadcastOutcome,
  CallOutcome,
  InfoResponse,
  ServicesResponse,
  StateResponse,
} from '../../src/ui/api.js';
import { jsonDepth } from '../../src/ui/body.js';
import { hostAllowed, tokenMatches } from '../../src/ui/guard.js';
import { UiServer, type UiServerOptions } from '../../src/ui/server.js';
import {
  AMQP_URL,
  connectForTest,
  deferred,
  failOnUnhandled,
  uniqueQueue,
  uniqueServiceName,
} from '../helpers.js';
import { serveShop } from './fixture.js';

failOnUnhandled();

const ASSETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/ui');
/** The test broker's user name and password (guest:guest): neither may reach the page. */
const SECRETS = (() => {
  const url = new URL(AMQP_URL);
  return [decodeURIComponent(url.username), decodeURIComponent(url.password)].filter(
    (secret) => secret.length > 0,
  );
})();

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  // The caller names the shape it expects of the body.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
  json<T = unknown>(): T;
}

/** Every body and log line the ui server produced in this file, checked for secrets at the end. */
const seen: string[] = [];

function send(
  ui: UiServer,
  method: string,
  pathname: string,
  options: {
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
    token?: string | null;
  } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {
    Host: `127.0.0.1:${ui.port}`,
    ...(options.token === null ? {} : { Authorization: `Bearer ${options.token ?? ui.token}` }),
    ...(options.body !== undefined || options.raw !== undefined
      ? { 'Content-Type': 'application/json' }
      : {}),
    ...options.headers,
  };
  const payload =
    options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: ui.port, method, path: pathname, headers },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          seen.push(text);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters
            json: <T>() => JSON.parse(text) as T,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A ui server on a connection of its own; both closed when the test (or file) that starts it ends. */
async function startUi(extra: Partial<UiServerOptions> = {}): Promise<UiServer> {
  const rpc = await connectForTest({ connectionName: 'ui test' });
  const ui = await UiServer.start({
    rpc,
    assets: ASSETS,
    broker: brokerLabel(AMQP_URL),
    version: '0.1.0',
    log: (line) => seen.push(line),
    ...extra,
  });
  after(() => ui.close());
  return ui;
}

const shop = uniqueServiceName('ui-api');
const shopQueue = `rpc.${shop}`;
const plainQueue = uniqueQueue('ui-plain');
const slowQueue = uniqueQueue('ui-slow');
let streamGate = deferred();
let streamEnded = deferred<boolean>();
const slowCall = deferred();
// Set up at the top: after() in a before() hook would close what connectForTest opens there.
const servers = await connectForTest({ connectionName: 'ui test services' });
const second = await connectForTest({ connectionName: 'ui test second instance' });
await serveShop(servers, shop, {
  beforeItem: async (_index, signal) => {
    await Promise.race([
      streamGate.promise,
      new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
    ]);
  },
  onStreamEnd: (cancelled) => streamEnded.resolve(cancelled),
});
await servers.serve(plainQueue, (request: unknown) => ({ echo: request, from: 'first' }));
await second.serve(plainQueue, (request: unknown) => ({ echo: request, from: 'second' }));
await servers.serve(slowQueue, async () => {
  await slowCall.promise;
  return 'done';
});
const ui = await startUi();

describe('the page', () => {
  test('index.html, app.js and app.css, with a strict CSP and no inline script', async () => {
    const page = await send(ui, 'GET', '/', { token: null });
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type'] ?? '', /^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    // Scripts only from files: every <script> has a src.
    assert.deepEqual(page.text.match(/<script(?![^>]*\ssrc=)[^>]*>/g), null);
    assert.doesNotMatch(page.text, /https?:\/\//, 'nothing from another site (no CDN)');
    const script = await send(ui, 'GET', '/app.js', { token: null });
    assert.equal(script.status, 200);
    assert.match(script.headers['content-type'] ?? '', /^text\/javascript/);
    const style = await send(ui, 'GET', '/app.css', { token: null });
    assert.equal(style.status, 200);
    assert.equal((await send(ui, 'GET', '/nothing.js', { token: null })).status, 404);
    assert.equal((await send(ui, 'POST', '/', { token: null, body: {} })).status, 405);
  });
});

describe('security', () => {
  test('the API needs the token; a wrong one is UNAUTHENTICATED', async () => {
    for (const token of [null, 'wrong', `${ui.token}x`, ui.token.slice(0, -1)]) {
      const answer = await send(ui, 'GET', '/api/info', { token });
      assert.equal(answer.status, 401, `token ${String(token)}`);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'UNAUTHENTICATED');
    }
    const info = await send(ui, 'GET', '/api/info');
    assert.equal(info.status, 200);
    assert.equal(info.json<InfoResponse>().broker, brokerLabel(AMQP_URL));
    assert.equal(info.headers['access-control-allow-origin'], undefined, 'no CORS');
  });

  test('tokens compare whole; the token is 32 random bytes', () => {
    assert.equal(tokenMatches('abc', 'abc'), true);
    assert.equal(tokenMatches('abd', 'abc'), false);
    assert.equal(tokenMatches(undefined, 'abc'), false);
    assert.match(ui.token, /^[A-Za-z0-9_-]{43}$/);
  });

  test('a Host other than localhost, an IP address or --host is refused (DNS rebinding)', async () => {
    for (const host of ['evil.example', `evil.example:${ui.port}`, `127.0.0.1:${ui.port + 1}`]) {
      const answer = await send(ui, 'GET', '/api/info', { headers: { Host: host } });
      assert.equal(answer.status, 403, host);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'PERMISSION_DENIED');
      assert.equal((await send(ui, 'GET', '/', { headers: { Host: host } })).status, 403);
    }
    for (const host of [`localhost:${ui.port}`, `[::1]:${ui.port}`]) {
      assert.equal((await send(ui, 'GET', '/api/info', { headers: { Host: host } })).status, 200);
    }
    assert.equal(hostAllowed(`devbox:${ui.port}`, 'devbox', ui.port), true);
    assert.equal(hostAllowed(`devbox.evil:${ui.port}`, 'devbox', ui.port), false);
    assert.equal(hostAllowed(undefined, '127.0.0.1', ui.port), false);
  });

  test('a POST from another origin is refused; the page’s own origin is fine', async () => {
    const body = { queue: plainQueue, request: 1 };
    const cross = await send(ui, 'POST', '/api/call', {
      body,
      headers: { Origin: 'http://evil.example' },
    });
    assert.equal(cross.status, 403);
    assert.equal(cross.json<{ error: { code: string } }>().error.code, 'PERMISSION_DENIED');
    const site = await send(ui, 'POST', '/api/call', {
      body,
      headers: { 'Sec-Fetch-Site': 'cross-site' },
    });
    assert.equal(site.status, 403);
    const own = await send(ui, 'POST', '/api/call', {
      body,
      headers: { Origin: `http://127.0.0.1:${ui.port}`, 'Sec-Fetch-Site': 'same-origin' },
    });
    assert.equal(own.status, 200);
    // A form post of another site cannot send JSON.
    const form = await send(ui, 'POST', '/api/call', {
      raw: 'queue=x',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 400);
  });
});

describe('services', () => {
  test('lists the served contract: methods with schemas, instances with counters', async () => {
    const answer = await send(ui, 'GET', '/api/services');
    assert.equal(answer.status, 200);
    const { services } = answer.json<ServicesResponse>();
    const found = services.find((service) => service.queue === shopQueue);
    assert.ok(found, 'the shop is listed');
    assert.equal(found.service, shop);
    assert.deepEqual(
      found.methods.map((method) => [method.name, method.stream]),
      [
        ['quote', false],
        ['add', false],
        ['countdown', true],
      ],
    );
    const quote = found.methods[0];
    assert.deepEqual(
      quote?.input && typeof quote.input === 'object' ? quote.input['required'] : [],
      ['sku', 'quantity', 'currency'],
    );
    assert.equal(found.instances.length, 1);
    assert.equal(typeof found.instances[0]?.counters.calls, 'number');
    const plain = services.find((service) => service.queue === plainQueue);
    assert.equal(plain?.instances.length, 2);
  });
});

describe('connection state', () => {
  test('GET /api/state: connected, then closed once the connection is; POST is refused', async () => {
    const rpc = await connectForTest({ connectionName: 'ui state test' });
    const own = await startUi({ rpc });
    assert.deepEqual((await send(own, 'GET', '/api/state')).json<StateResponse>(), {
      state: 'connected',
      reconnects: 0,
    });
    await rpc.close();
    assert.equal((await send(own, 'GET', '/api/state')).json<StateResponse>().state, 'closed');
    const post = await send(own, 'POST', '/api/state', { body: {} });
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET');
  });
});

describe('calls', () => {
  test('a method: the reply and the latency', async () => {
    const answer = await send(ui, 'POST', '/api/call', {
      body: { queue: shopQueue, method: 'add', request: { a: 2, b: 3 }, timeoutMs: 5_000 },
    });
    assert.equal(answer.status, 200);
    const outcome = answer.json<CallOutcome>();
    assert.ok(outcome.ok);
    assert.equal(outcome.reply, 5);
    assert.ok(outcome.latencyMs > 0 && outcome.latencyMs < 5_000);
  });

  test('an error reply: its code, message and details, as a 200 with ok: false', async () => {
    const outcome = (
      await send(ui, 'POST', '/api/call', {
        body: {
          queue: shopQueue,
          method: 'quote',
          request: { sku: 'A-1', quantity: 500, currency: 'EUR' },
        },
      })
    ).json<CallOutcome>();
    assert.ok(!outcome.ok);
    assert.deepEqual(outcome.error, {
      code: 'OUT_OF_RANGE',
      message: 'only 100 of A-1 in stock',
      details: { available: 100 },
    });
    const invalid = (
      await send(ui, 'POST', '/api/call', {
        body: { queue: shopQueue, method: 'quote', request: { sku: '' } },
      })
    ).json<CallOutcome>();
    assert.equal(!invalid.ok && invalid.error.code, 'INVALID_ARGUMENT');
    const unknown = (
      await send(ui, 'POST', '/api/call', {
        body: { queue: shopQueue, method: 'nope', request: null },
      })
    ).json<CallOutcome>();
    assert.equal(!unknown.ok && unknown.error.code, 'UNIMPLEMENTED');
  });

  test('raw JSON to any queue; a queue that does not exist is UNAVAILABLE at once', async () => {
    const outcome = (
      await send(ui, 'POST', '/api/call', { body: { queue: plainQueue, request: [1, 'two'] } })
    ).json<CallOutcome>();
    assert.ok(outcome.ok);
    assert.deepEqual((outcome.reply as { echo: unknown }).echo, [1, 'two']);
    const missing = (
      await send(ui, 'POST', '/api/call', {
        body: { queue: `${plainQueue}.missing`, request: null, timeoutMs: 10_000 },
      })
    ).json<CallOutcome>();
    assert.equal(!missing.ok && missing.error.code, 'UNAVAILABLE');
    assert.ok(missing.latencyMs < 5_000, `UNAVAILABLE after ${missing.latencyMs} ms`);
  });

  test('a timeout: DEADLINE_EXCEEDED after about timeoutMs', async () => {
    const outcome = (
      await send(ui, 'POST', '/api/call', {
        body: { queue: slowQueue, request: null, timeoutMs: 300 },
      })
    ).json<CallOutcome>();
    assert.equal(!outcome.ok && outcome.error.code, 'DEADLINE_EXCEEDED');
    assert.ok(outcome.latencyMs >= 250 && outcome.latencyMs < 3_000, `${outcome.latencyMs} ms`);
  });

  test('a broadcast: one row per instance', async () => {
    const outcome = (
      await send(ui, 'POST', '/api/broadcast', {
        body: { queue: plainQueue, request: 'status', timeoutMs: 5_000, max: 2 },
      })
    ).json<BroadcastOutcome>();
    assert.equal(outcome.replies.length, 2);
    const from = outcome.replies.map((row) => (row.ok ? (row.reply as { from: string }).from : ''));
    assert.deepEqual(from.sort(), ['first', 'second']);
    assert.equal(new Set(outcome.replies.map((row) => row.instance)).size, 2);
    assert.ok(outcome.latencyMs < 4_000, 'done once both answered');
  });
});

describe('streams', () => {
  test('items as events, then the end', async () => {
    streamGate = deferred();
    streamGate.resolve();
    const answer = await send(ui, 'POST', '/api/stream', {
      body: { queue: shopQueue, method: 'countdown', request: { from: 3 } },
    });
    assert.equal(answer.status, 200);
    assert.match(answer.headers['content-type'] ?? '', /^text\/event-stream/);
    const events = answer.text
      .trim()
      .split('\n\n')
      .map((block) => {
        const [event = '', data = ''] = block.split('\n');
        return {
          event: event.slice(7),
          data: JSON.parse(data.slice(6)) as Record<string, unknown>,
        };
      });
    assert.deepEqual(
      events.map((event) => [event.event, event.data['item'] ?? event.data['count']]),
      [
        ['item', 3],
        ['item', 2],
        ['item', 1],
        ['item', 0],
        ['end', 4],
      ],
    );
  });

  test('closing the response cancels the stream on the server', async () => {
    streamGate = deferred();
    streamEnded = deferred<boolean>();
    const stream = openStream(ui, {
      queue: shopQueue,
      method: 'countdown',
      request: { from: 1000 },
    });
    assert.match(await stream.first, /"item":1000/);
    stream.request.destroy();
    assert.equal(await streamEnded.promise, true, 'the handler saw its signal abort');
  });
});

/** A streamed call read by hand: its first chunk, and all it got when the response ends. */
function openStream(server: UiServer, body: unknown) {
  const first = deferred<string>();
  const all = deferred<string>();
  const request = httpRequest({
    host: '127.0.0.1',
    port: server.port,
    method: 'POST',
    path: '/api/stream',
    headers: {
      Host: `127.0.0.1:${server.port}`,
      Authorization: `Bearer ${server.token}`,
      'Content-Type': 'application/json',
    },
  });
  request.on('response', (response) => {
    let text = '';
    response.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      first.resolve(text);
    });
    response.on('close', () => all.resolve(text));
  });
  request.on('error', () => all.resolve('')); // destroyed by the test, or the server closed
  request.end(JSON.stringify(body));
  return { request, first: first.promise, all: all.promise };
}

describe('bounds', () => {
  test('a body over maxBodyBytes is RESOURCE_EXHAUSTED (413), unread', async () => {
    const small = await startUi({ limits: { maxBodyBytes: 1_000 } });
    const answer = await send(small, 'POST', '/api/call', {
      body: { queue: plainQueue, request: 'x'.repeat(2_000) },
    });
    assert.equal(answer.status, 413);
    assert.equal(answer.json<{ error: { code: string } }>().error.code, 'RESOURCE_EXHAUSTED');
  });

  test('JSON nested deeper than maxJsonDepth, bad JSON, unknown fields, bad numbers', async () => {
    const deep = `{"queue":"q","request":${'['.repeat(70)}${']'.repeat(70)}}`;
    const expectations: Array<[string, string | undefined, unknown]> = [
      ['deep', deep, undefined],
      ['not JSON', '{"queue":', undefined],
      ['an array', '[]', undefined],
      ['unknown field', undefined, { queue: 'q', request: 1, extra: true }],
      ['no queue', undefined, { request: 1 }],
      ['timeout too long', undefined, { queue: 'q', timeoutMs: 600_001 }],
      ['timeout not an integer', undefined, { queue: 'q', timeoutMs: 1.5 }],
      ['queue too long', undefined, { queue: 'q'.repeat(256) }],
    ];
    for (const [what, raw, body] of expectations) {
      const answer = await send(ui, 'POST', '/api/call', raw === undefined ? { body } : { raw });
      assert.equal(answer.status, 400, what);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'INVALID_ARGUMENT', what);
    }
    assert.equal(jsonDepth('{"a":"[[[[","b":[{}]}'), 3);
  });

  test('calls and streams beyond their limits are RESOURCE_EXHAUSTED (429)', async () => {
    const small = await startUi({ limits: { maxCalls: 1, maxStreams: 1 } });
    const held = send(small, 'POST', '/api/call', { body: { queue: slowQueue, request: null } });
    // The held call is in flight once the slow handler runs: the UI counts it before that.
    let second: Answer;
    do {
      second = await send(small, 'POST', '/api/call', { body: { queue: plainQueue, request: 1 } });
    } while (second.status === 200);
    assert.equal(second.status, 429);
    assert.equal(second.json<{ error: { code: string } }>().error.code, 'RESOURCE_EXHAUSTED');
    slowCall.resolve();
    assert.equal((await held).json<CallOutcome>().ok, true);
    assert.equal(
      (await send(small, 'POST', '/api/call', { body: { queue: plainQueue, request: 1 } })).status,
      200,
      'the slot is free again',
    );
  });
});

describe('close', () => {
  test('ends streams in flight; idempotent; asyncDispose', async () => {
    const own = await startUi();
    streamGate = deferred();
    streamEnded = deferred<boolean>();
    const stream = openStream(own, {
      queue: shopQueue,
      method: 'countdown',
      request: { from: 1000 },
    });
    await stream.first;
    await Promise.all([own.close(), own.close(), own[Symbol.asyncDispose]()]);
    assert.equal(await streamEnded.promise, true, 'the stream was cancelled on the server');
    const text = await stream.all;
    assert.match(text, /event: end/, 'the stream ended with an end event');
    assert.match(text, /CANCELLED/);
  });

  test('a second server on a taken port is UNAVAILABLE, naming the port', async () => {
    const rpc = await connectForTest();
    await assert.rejects(
      UiServer.start({ rpc, assets: ASSETS, broker: 'x', version: '0', port: ui.port }),
      (error: unknown) =>
        error instanceof RpcError &&
        error.code === 'UNAVAILABLE' &&
        /EADDRINUSE/.test(error.message),
    );
    await assert.rejects(
      UiServer.start({ rpc, assets: '/nonexistent', broker: 'x', version: '0' }),
      (error: unknown) => error instanceof RpcError && error.code === 'FAILED_PRECONDITION',
    );
  });
});

after(() => {
  // Checked last: every body and log line of this file.
  for (const text of seen) {
    for (const secret of SECRETS) {
      assert.ok(!text.includes(secret), `"${secret}" appeared in: ${text.slice(0, 200)}`);
    }
  }
  assert.ok(seen.length > 20);
});
