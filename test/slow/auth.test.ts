/**
 * Authentication and authorisation (scenarios 19, 20 of docs/reliability.md): refused logins
 * end connect() at once and end a reconnect loop for good; passwords never show; and the
 * least-privilege permissions documented under "Permissions" are enough, and each part is
 * needed: for calls, or for the control plane (cancellation, broadcast), without which a
 * server still serves. One private broker with its own users and vhost.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import {
  connect,
  RpcError,
  type Logger,
  type ReplyMode,
  type RpcConnection,
} from '../../src/index.js';
import { FaultProxy, startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';
import { assertCode, rejectsWith, settle } from '../faults/fault-helpers.js';

failOnUnhandled();

const SECRET = 'S3cret-Pa55word';
let broker: PrivateBroker;
/** amqp://USER:PASSWORD@127.0.0.1:PORT/VHOST */
let urlFor: (user: string, password: string, vhost?: string) => string;
before(async () => {
  broker = await startPrivateBroker();
  urlFor = (user, password, vhost = 'rpc') => {
    const url = new URL(broker.url);
    url.username = user;
    url.password = password;
    url.pathname = `/${vhost}`;
    return url.toString();
  };
  // rabbitmqctl takes 1-2 s a call: run them side by side (the file has 120 s in all).
  await broker.ctl('add_vhost', 'rpc');
  await Promise.all(
    ['alice', 'nobody', ...Object.values(PERMISSIONS).map(({ user }) => user)].map((user) =>
      broker.ctl('add_user', user, SECRET),
    ),
  );
  await Promise.all([
    setPermissions('alice', ['.*', '.*', '.*']),
    ...Object.values(PERMISSIONS).map(({ user, perms }) => setPermissions(user, perms)),
  ]);
});
after(() => broker.close());

function assertNoSecret(error: unknown): void {
  assert.ok(!inspect(error, { depth: 8 }).includes(SECRET), 'the password shows in the error');
  assert.ok(!String(error).includes(SECRET));
}

describe('refused logins (scenario 19)', () => {
  test('a wrong password: UNAUTHENTICATED at once, no further URL tried, no password shown', async () => {
    await using first = await FaultProxy.start(broker.url);
    await using second = await FaultProxy.start(broker.url);
    const started = Date.now();
    const error = await connect({
      url: [first.url(urlFor('alice', 'wrong-' + SECRET)), second.url(urlFor('alice', SECRET))],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assertCode(error, 'UNAUTHENTICATED');
    assert.ok(Date.now() - started < 2000);
    assert.equal(first.accepted, 1);
    assert.equal(second.accepted, 0, 'a refused login went on to the next URL');
    assertNoSecret(error);
  });

  test('a user without access to the vhost: PERMISSION_DENIED; an unknown vhost too', async () => {
    for (const url of [urlFor('nobody', SECRET), urlFor('alice', SECRET, 'no-such-vhost')]) {
      const error = await connect(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      assertCode(error, 'PERMISSION_DENIED');
      assertNoSecret(error);
    }
  });

  test('a reconnect that meets a refused login ends the connection for good with UNAUTHENTICATED', async (t) => {
    await broker.ctl('add_user', 'carol', SECRET);
    await broker.ctl('set_permissions', '-p', 'rpc', 'carol', '.*', '.*', '.*');
    await using proxy = await FaultProxy.start(broker.url);
    const rpc = await connect({
      url: proxy.url(urlFor('carol', SECRET)),
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    t.after(() => rpc.close());
    await broker.ctl('change_password', 'carol', 'changed');
    proxy.resetAll();
    const ended = await rpc.closed;
    assertCode(ended, 'UNAUTHENTICATED');
    assertNoSecret(ended);
    assert.equal(rpc.state, 'closed');
    const attempts = proxy.accepted;
    assert.equal(attempts, 2, 'one connection, one refused reconnect');
    await assert.rejects(rpc.call('any', 1, { timeoutMs: 1000 }), rejectsWith('UNAUTHENTICATED'));
  });
});

type Perms = [configure: string, write: string, read: string];

/**
 * The least privileges of docs/reliability.md, "Permissions". A server also declares the
 * control exchange (rabbit-rpc.control) and its own server-named control queue (amq.gen-*),
 * binds the queue to the exchange (write on the queue, read on the exchange) and consumes it.
 * A caller publishes cancels and broadcasts to the exchange; the passive declare with which
 * it first checks that the exchange exists needs no permission.
 */
const PERMISSIONS: Record<'server' | ReplyMode, { user: string; perms: Perms }> = {
  server: {
    user: 'srv',
    perms: [
      '^(svc\\..*|amq\\.gen-.*|rabbit-rpc\\.control)$',
      '^(amq\\.default|amq\\.gen-.*)$',
      '^(svc\\..*|amq\\.gen-.*|rabbit-rpc\\.control)$',
    ],
  },
  queue: {
    user: 'cq',
    perms: ['^amq\\.gen-', '^(amq\\.default|rabbit-rpc\\.control)$', '^amq\\.gen-'],
  },
  direct: { user: 'cd', perms: ['', '^(amq\\.default|rabbit-rpc\\.control)$', ''] },
  'expiring-queue': {
    user: 'ce',
    perms: ['^rpc\\.reply\\.', '^(amq\\.default|rabbit-rpc\\.control)$', '^rpc\\.reply\\.'],
  },
};
/** A server's permissions before the control plane: it serves, without cancellation or broadcast. */
const SERVER_WITHOUT_CONTROL: Perms = ['^svc\\.', '^amq\\.default$', '^svc\\.'];
const COLUMNS = ['configure', 'write', 'read'] as const;

/** `perms` with `name` taken out of the `^(a|b|c)$` regex of one column. */
function withoutName(perms: Perms, column: 0 | 1 | 2, name: string): Perms {
  const fewer: Perms = [...perms];
  const names = /^\^\((.*)\)\$$/.exec(perms[column])?.[1]?.split('|') ?? [];
  assert.ok(names.includes(name), `${name} is not in ${perms[column]}`);
  fewer[column] = `^(${names.filter((n) => n !== name).join('|')})$`;
  return fewer;
}

async function setPermissions(user: string, perms: readonly string[]): Promise<void> {
  await broker.ctl('set_permissions', '-p', 'rpc', user, ...perms);
}

/** `perms` less each non-empty regex in turn, labelled. */
function withoutEachColumn(perms: Perms): Array<[string, Perms]> {
  return COLUMNS.flatMap((column, i): Array<[string, Perms]> => {
    if (perms[i] === '') return [];
    const fewer: Perms = [...perms];
    fewer[i] = '';
    return [[`without ${column}`, fewer]];
  });
}

/**
 * Gives `user` each of `variants` in turn and runs `check` under it, then gives back
 * `perms`, once (each rabbitmqctl call takes 1-2 s).
 */
async function withEach(
  user: string,
  perms: Perms,
  variants: ReadonlyArray<[string, Perms]>,
  check: (label: string) => Promise<void>,
): Promise<void> {
  try {
    for (const [label, fewer] of variants) {
      await setPermissions(user, fewer);
      await check(label);
    }
  } finally {
    await setPermissions(user, perms);
  }
}

/** Serves a svc.* queue as `srv` and calls it as the client of `mode`; returns the outcome. */
async function roundTrip(mode: ReplyMode) {
  const queue = uniqueQueue('x').replace(/^test\./, 'svc.');
  const opened: RpcConnection[] = [];
  try {
    const server = await connect({ url: urlFor('srv', SECRET), reconnect: false });
    opened.push(server);
    const served = await settle(server.serve(queue, (n: number) => n + 1));
    if (served.error) return { served, called: undefined };
    const client = await connect({ url: urlFor(PERMISSIONS[mode].user, SECRET), replyMode: mode });
    opened.push(client);
    const called = await settle(client.call(queue, 1, { timeoutMs: 1500 }));
    return { served, called };
  } finally {
    await Promise.all(opened.map((rpc) => rpc.close()));
  }
}

describe('least privilege (scenario 20)', () => {
  for (const mode of ['queue', 'direct', 'expiring-queue'] as const) {
    test(`replyMode ${mode}: the documented permissions are enough, and each one is needed`, async () => {
      const ok = await roundTrip(mode);
      assert.equal(
        ok.called?.value,
        2,
        `failed with ${String(ok.called?.error ?? ok.served.error)}`,
      );
      const { user, perms } = PERMISSIONS[mode];
      await withEach(user, perms, withoutEachColumn(perms), async () => {
        const result = await roundTrip(mode);
        // A refused publish (write), declare or consume: the call says PERMISSION_DENIED.
        assertCode(result.called?.error, 'PERMISSION_DENIED');
      });
    });
  }

  test('the server: the documented permissions are needed, each one', async () => {
    const { user, perms } = PERMISSIONS.server;
    await withEach(user, perms, withoutEachColumn(perms), async (label) => {
      const result = await roundTrip('queue');
      // Without write, serving works but no reply can be sent: the call times out.
      const error = result.served.error ?? result.called?.error;
      assert.ok(error !== undefined, `the server worked ${label}`);
    });
  });
});

/** What the control plane did for one server and one caller (see controlPlaneRun). */
interface ControlOutcome {
  /** The plain call's reply. */
  plain: unknown;
  /** Why the handler's ctx.signal aborted after the caller's abort: CANCELLED, or DEADLINE_EXCEEDED if the cancel never came. */
  handlerAbort: string | undefined;
  broadcast: Awaited<ReturnType<RpcConnection['broadcast']>> | RpcError;
  /** The items of a stream longer than its window. */
  streamed: unknown[];
  /** The server's warnings: the err of each. */
  warnings: unknown[];
}

const STREAM_ITEMS = [0, 1, 2, 3, 4, 5];

/**
 * Serves two svc.* queues (a plain one, a streaming one) as `srv`, and as the caller of
 * `mode`: calls it, aborts a call while its handler runs, broadcasts to it and reads a
 * stream of 6 items through a window of 2. The aborted call's deadline (1.5 s) bounds the
 * wait for a cancel that never comes: the handler's signal then aborts DEADLINE_EXCEEDED.
 */
async function controlPlaneRun(mode: ReplyMode): Promise<ControlOutcome> {
  const queue = uniqueQueue('ctl').replace(/^test\./, 'svc.');
  const warnings: unknown[] = [];
  const ignore = (): void => undefined;
  const logger: Logger = {
    debug: ignore,
    info: ignore,
    error: ignore,
    warn: (context) => warnings.push(context['err']),
  };
  const opened: RpcConnection[] = [];
  try {
    const server = await connect({ url: urlFor('srv', SECRET), logger, reconnect: false });
    opened.push(server);
    const running = deferred<AbortSignal>();
    await server.serve(queue, async (request: string, ctx) => {
      if (request !== 'wait') return `${request}!`;
      const signal = ctx.signal;
      running.resolve(signal);
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      return 'stopped';
    });
    // eslint-disable-next-line @typescript-eslint/require-await -- the handler shape of a stream
    await server.serve(`${queue}.stream`, async function* () {
      for (const item of STREAM_ITEMS) yield item;
    });
    const caller = await connect({ url: urlFor(PERMISSIONS[mode].user, SECRET), replyMode: mode });
    opened.push(caller);
    const plain = await caller.call(queue, 'plain', { timeoutMs: 5000 });

    const abort = new AbortController();
    const aborted = settle(caller.call(queue, 'wait', { signal: abort.signal, timeoutMs: 1500 }));
    const handlerSignal = await running.promise;
    abort.abort();
    assertCode((await aborted).error, 'CANCELLED');
    // Waited for at the end: broadcast and stream run meanwhile.
    const handlerAborted = new Promise<unknown>((resolve) => {
      if (handlerSignal.aborted) resolve(handlerSignal.reason);
      else handlerSignal.addEventListener('abort', () => resolve(handlerSignal.reason));
    });

    const broadcast = await caller
      .broadcast(queue, 'status', { max: 1, timeoutMs: 5000 })
      .catch((error: unknown) => RpcError.from(error, 'UNKNOWN'));
    const streamed: unknown[] = [];
    for await (const item of caller.stream(`${queue}.stream`, null, {
      window: 2,
      timeoutMs: 10_000,
    })) {
      streamed.push(item);
    }
    const reason = await handlerAborted;
    const handlerAbort = reason instanceof RpcError ? reason.code : undefined;
    return { plain, handlerAbort, broadcast, streamed, warnings };
  } finally {
    await Promise.all(opened.map((rpc) => rpc.close()));
  }
}

describe('least privilege for the control plane: cancellation and broadcast', () => {
  for (const mode of ['queue', 'direct', 'expiring-queue'] as const) {
    test(`replyMode ${mode}: with the documented permissions an abort reaches the handler and a broadcast is answered`, async () => {
      const run = await controlPlaneRun(mode);
      assert.equal(run.plain, 'plain!');
      assert.equal(run.handlerAbort, 'CANCELLED');
      assert.ok(Array.isArray(run.broadcast), inspect(run.broadcast));
      assert.deepEqual(
        run.broadcast.map((reply) => (reply.ok ? reply.reply : reply.error.code)),
        ['status!'],
      );
      assert.deepEqual(run.streamed, STREAM_ITEMS);
      assert.deepEqual(run.warnings, []);
    });
  }

  /** The server's permissions less one part of the control plane; the old ones last. */
  const degraded: Array<[string, Perms]> = [
    ...(
      [
        [0, 'amq\\.gen-.*'],
        [0, 'rabbit-rpc\\.control'],
        [1, 'amq\\.gen-.*'],
        [2, 'amq\\.gen-.*'],
        [2, 'rabbit-rpc\\.control'],
      ] as const
    ).map(([column, name]): [string, Perms] => [
      `without ${COLUMNS[column]} on ${name}`,
      withoutName(PERMISSIONS.server.perms, column, name),
    ]),
    ['with the permissions from before the control plane', SERVER_WITHOUT_CONTROL],
  ];
  test('a server without any one part serves on: no cancellation, no broadcast, one warning per serve()', async () => {
    const { user, perms } = PERMISSIONS.server;
    await withEach(user, perms, degraded, async (label) => {
      const run = await controlPlaneRun('queue');
      assert.equal(run.plain, 'plain!', label);
      assert.equal(run.handlerAbort, 'DEADLINE_EXCEEDED', `${label}: the cancel came`);
      assert.deepEqual(run.broadcast, [], label);
      // Without credit from the caller the server streams without waiting for it.
      assert.deepEqual(run.streamed, STREAM_ITEMS, label);
      // One each for the two serve() calls; not a loop of retries.
      assert.equal(run.warnings.length, 2, `${label}: ${run.warnings.length} warnings`);
      for (const err of run.warnings) assertCode(err, 'PERMISSION_DENIED');
    });
  });

  test('a caller without write on the control exchange: calls work, its cancel is lost, broadcast is PERMISSION_DENIED', async () => {
    const { user, perms } = PERMISSIONS.queue;
    const fewer = withoutName(perms, 1, 'rabbit-rpc\\.control');
    await withEach(user, perms, [['without write on the exchange', fewer]], async () => {
      const run = await controlPlaneRun('queue');
      assert.equal(run.plain, 'plain!');
      assert.equal(run.handlerAbort, 'DEADLINE_EXCEEDED', 'the cancel came');
      assertCode(run.broadcast, 'PERMISSION_DENIED');
      // Stream credit goes to the server's control queue through the default exchange.
      assert.deepEqual(run.streamed, STREAM_ITEMS);
    });
  });
});
