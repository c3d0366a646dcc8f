/**
 * Issue 13 with real users on a private broker: what one user with ordinary caller rights
 * (docs/reliability.md, "Permissions") can do to another's calls. alice calls, mallory is
 * the other user, eve and oscar have the older shared `^rpc\.reply\.` rights, srv serves.
 * The broker checks `user_id` against the login, which is what the server relies on.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import { connect, RpcError, type ConnectOptions, type RpcConnection } from '../../src/index.js';
import { FaultProxy, startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { collectReplies, deferred, eventually, failOnUnhandled } from '../helpers.js';

failOnUnhandled();

const PASSWORD = 'hostile-pw';
const CALL = { timeoutMs: 10_000 };
let broker: PrivateBroker;
let server: RpcConnection;
let urlFor: (user: string) => string;

/** A caller's rights: server-named reply queues, its own expiring reply queues. */
function callerPermissions(
  user: string,
  replyQueues = `rpc\\.reply\\.${user}\\.[0-9a-f-]{36}`,
): string[] {
  const own = `^(amq\\.gen-.*|${replyQueues})$`;
  return [own, '^(amq\\.default|rabbit-rpc\\.control)$', own];
}

before(async () => {
  broker = await startPrivateBroker();
  urlFor = (user) => {
    const url = new URL(broker.url);
    url.username = user;
    url.password = PASSWORD;
    url.pathname = '/rpc';
    return url.toString();
  };
  await broker.ctl('add_vhost', 'rpc');
  for (const user of ['alice', 'mallory', 'eve', 'oscar', 'srv']) {
    await broker.ctl('add_user', user, PASSWORD);
  }
  await broker.ctl('set_permissions', '-p', 'rpc', 'srv', '.*', '.*', '.*');
  await broker.ctl('set_permissions', '-p', 'rpc', 'alice', ...callerPermissions('alice'));
  await broker.ctl('set_permissions', '-p', 'rpc', 'mallory', ...callerPermissions('mallory'));
  // The shared rights documented before issue 13: any caller may read any expiring queue.
  for (const user of ['eve', 'oscar']) {
    await broker.ctl(
      'set_permissions',
      '-p',
      'rpc',
      user,
      ...callerPermissions(user, 'rpc\\.reply\\..*'),
    );
  }
  server = await connect({ url: urlFor('srv'), reconnect: false });
});
after(async () => {
  await server.close();
  await broker.close();
});

async function connectAs(user: string, options: Omit<ConnectOptions, 'url'> = {}) {
  const rpc = await connect({ url: urlFor(user), reconnect: false, ...options });
  after(() => rpc.close());
  return rpc;
}

async function rawAs(user: string): Promise<AMQPChannel> {
  const client = new AMQPClient(urlFor(user));
  await client.connect();
  after(() => (client.closed ? undefined : client.close()));
  return client.channel();
}

/** Sends one request as `user` (its true user_id) and returns the decoded reply. */
async function rawCall(user: string, queue: string, messageId: string): Promise<unknown> {
  const channel = await rawAs(user);
  const replies = await collectReplies(channel);
  await channel.basicPublish('', queue, 'null', {
    correlationId: randomUUID(),
    messageId,
    userId: user,
    replyTo: replies.name,
  });
  const [reply] = await replies.next(1);
  return JSON.parse((reply as AMQPMessage).bodyToString() ?? 'null');
}

describe('deduplication is per user', () => {
  let runs = 0;
  before(async () => {
    await server.serve('ledger', (_request, ctx) => {
      runs++;
      return `for ${ctx.userId ?? 'nobody'}`;
    });
  });

  test("another user replaying a message_id runs the handler as himself, never gets the first user's reply", async () => {
    const id = randomUUID();
    assert.equal(await rawCall('alice', 'ledger', id), 'for alice');
    const before = runs;
    assert.equal(await rawCall('mallory', 'ledger', id), 'for mallory');
    assert.equal(runs, before + 1);
    // alice's own retry is still answered from the cache.
    assert.equal(await rawCall('alice', 'ledger', id), 'for alice');
    assert.equal(runs, before + 1);
  });

  test("another user sending the caller's next message_id first does not poison her call", async () => {
    const next = randomUUID();
    assert.equal(await rawCall('mallory', 'ledger', next), 'for mallory');
    assert.equal(await rawCall('alice', 'ledger', next), 'for alice');
  });
});

describe('cancels', () => {
  test("another user's cancel with the call's id is ignored; the caller's own cancel aborts it", async () => {
    const started = deferred<{ id: string; signal: AbortSignal }>();
    const finished = deferred<unknown>();
    const slow = await server.serve('slow', (_request, ctx) => {
      started.resolve({ id: ctx.correlationId ?? '', signal: ctx.signal });
      return new Promise((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          finished.resolve(ctx.signal.reason);
          resolve('aborted');
        });
      });
    });
    const alice = await connectAs('alice');
    const abort = new AbortController();
    const call = alice.call('slow', null, { ...CALL, signal: abort.signal });
    const { id, signal } = await started.promise;
    // mallory learned the id: a cancel without user_id, and one with his own.
    const mallory = await rawAs('mallory');
    await mallory.confirmSelect();
    for (const userId of [undefined, 'mallory']) {
      await mallory.basicPublish('rabbit-rpc.control', 'slow', null, {
        correlationId: id,
        ...(userId === undefined ? {} : { userId }),
        headers: { 'rpc-control': 'cancel' },
      });
    }
    await eventually(() => slow.stats.cancelled === 2, 'both cancels to reach the server');
    assert.equal(signal.aborted, false, "mallory's cancels did not abort alice's call");
    abort.abort();
    await assert.rejects(
      call,
      (error: unknown) => error instanceof RpcError && error.code === 'CANCELLED',
    );
    const reason = await finished.promise;
    assert.ok(reason instanceof RpcError && reason.code === 'CANCELLED');
    await slow.close();
  });
});

describe('stream credit', () => {
  test("another user's credit with the stream's id is ignored; the caller's own is honoured", async () => {
    await server.serve('numbers', async function* () {
      for (let n = 0; ; n++) {
        yield n;
        await Promise.resolve();
      }
    });
    const alice = await rawAs('alice');
    const replies = await collectReplies(alice);
    const id = randomUUID();
    await alice.basicPublish('', 'numbers', 'null', {
      correlationId: id,
      userId: 'alice',
      replyTo: replies.name,
      headers: { 'rpc-stream-window': 2 },
    });
    const [first] = await replies.next(2);
    const controlQueue = first?.properties.headers?.['rpc-control-queue'];
    assert.ok(typeof controlQueue === 'string');
    const credit = (total: number, userId?: string) => ({
      correlationId: id,
      ...(userId === undefined ? {} : { userId }),
      headers: { 'rpc-control': 'credit', 'rpc-credit': total, 'rpc-reply-to': replies.name },
    });
    // mallory learned the id and the reply queue: credit for 2 more, confirmed (queued first).
    const mallory = await rawAs('mallory');
    await mallory.confirmSelect();
    await mallory.basicPublish('', controlQueue, null, credit(4, 'mallory'));
    await mallory.basicPublish('', controlQueue, null, credit(4));
    // alice's own credit for one more; then she stops.
    await alice.basicPublish('', controlQueue, null, credit(3, 'alice'));
    await replies.next(3);
    await alice.basicPublish('', controlQueue, null, {
      correlationId: id,
      userId: 'alice',
      headers: { 'rpc-control': 'cancel', 'rpc-reply-to': replies.name },
    });
    for (let seen = 4; ; seen++) {
      const all = await replies.next(seen);
      if (all.at(-1)?.properties.headers?.['rpc-stream'] !== 'end') continue;
      const items = all.filter((m) => m.properties.headers?.['rpc-stream'] === 'item');
      assert.equal(items.length, 3, "only alice's credit was honoured");
      break;
    }
  });
});

/** A plain AMQP server on `queue`: hands over each request; `answer` replies to it. */
async function rawServer(queue: string) {
  const channel = await rawAs('srv');
  await channel.queueDeclare(queue, { durable: false, autoDelete: true });
  const requests: AMQPMessage[] = [];
  let arrived = deferred();
  await channel.basicConsume(queue, { noAck: true }, (message) => {
    requests.push(message);
    arrived.resolve();
  });
  return {
    async next(): Promise<AMQPMessage> {
      while (requests.length === 0) {
        await arrived.promise;
        arrived = deferred();
      }
      return requests.shift() as AMQPMessage;
    },
    answer(request: AMQPMessage, value: unknown): Promise<unknown> {
      return channel.basicPublish('', request.properties.replyTo ?? '', JSON.stringify(value), {
        correlationId: request.properties.correlationId ?? '',
      });
    },
  };
}

describe("replyMode: 'expiring-queue'", () => {
  test('the queue is named after its user: with per-user rights another user cannot read it while its owner reconnects', async () => {
    await using proxy = await FaultProxy.start(broker.url);
    const alice = await connect({
      url: proxy.url(urlFor('alice')),
      replyMode: 'expiring-queue',
    });
    after(() => alice.close());
    const echo = await rawServer('expiring.echo');
    const call = alice.call('expiring.echo', null, CALL);
    const request = await echo.next();
    const replyQueue = request.properties.replyTo ?? '';
    assert.match(replyQueue, /^rpc\.reply\.alice\.[0-9a-f-]{36}$/);
    proxy.setMode('refuse');
    proxy.resetAll();
    await eventually(() => alice.state === 'reconnecting', 'alice to lose her connection');
    const mallory = await rawAs('mallory');
    await assert.rejects(
      mallory.basicConsume(replyQueue, { noAck: true }, () => undefined),
      /ACCESS_REFUSED.*refused for user 'mallory'/,
    );
    proxy.setMode('pass');
    await echo.answer(request, 'for alice');
    assert.equal(await call, 'for alice', 'the reply waited for alice');
  });

  test('taken by another consumer while its owner reconnected: the owner moves to a new queue, its pending call fails UNAVAILABLE', async () => {
    await using proxy = await FaultProxy.start(broker.url);
    const eveCaller = await connect({
      url: proxy.url(urlFor('eve')),
      replyMode: 'expiring-queue',
    });
    after(() => eveCaller.close());
    const echo = await rawServer('expiring.taken');
    const pending = eveCaller.call('expiring.taken', null, CALL);
    const request = await echo.next();
    const replyQueue = request.properties.replyTo ?? '';
    proxy.setMode('refuse');
    proxy.resetAll();
    await eventually(() => eveCaller.state === 'reconnecting', 'the caller to lose its connection');
    const thief = await rawAs('oscar'); // the shared rights let him read eve's queue
    const stolen: AMQPMessage[] = [];
    await thief.basicConsume(replyQueue, { noAck: true, exclusive: true }, (message) => {
      stolen.push(message);
    });
    await echo.answer(request, 'secret');
    await eventually(() => stolen.length === 1, 'the thief to read the reply');
    proxy.setMode('pass');
    await assert.rejects(
      pending,
      (error: unknown) => error instanceof RpcError && error.code === 'UNAVAILABLE',
    );
    // Not locked out: the next call goes through a new reply queue.
    const next = eveCaller.call('expiring.taken', null, CALL);
    const again = await echo.next();
    assert.notEqual(again.properties.replyTo, replyQueue);
    await echo.answer(again, 'fresh');
    assert.equal(await next, 'fresh');
  });
});
