/**
 * Trusted caller identity: requests carry the login as AMQP `user_id`, RabbitMQ refuses a
 * publish whose `user_id` is another user's (406), and handlers read it as `ctx.userId`.
 * One private broker with its own users and vhost: alice and bob call, srv serves.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import {
  connect,
  type ConnectOptions,
  type HandlerContext,
  type RpcConnection,
} from '../../src/index.js';
import { startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled } from '../helpers.js';
import { rejectsWith } from '../faults/fault-helpers.js';

failOnUnhandled();

const PASSWORD = 'identity-pw';
/** Short enough that a call the broker silently dropped fails the test rather than hang it. */
const CALL = { timeoutMs: 5_000 };
let broker: PrivateBroker;
let server: RpcConnection;
/** amqp://USER:PASSWORD@127.0.0.1:PORT/rpc */
let urlFor: (user: string) => string;
/** ctx.userId of every request the `who` handler ran, in order. */
const seen: Array<string | undefined> = [];
let nextSeen: ((userId: string | undefined) => void) | undefined;

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
  for (const user of ['alice', 'bob', 'srv', 'gateway']) {
    await broker.ctl('add_user', user, PASSWORD);
    await broker.ctl('set_permissions', '-p', 'rpc', user, '.*', '.*', '.*');
  }
  await broker.ctl('set_user_tags', 'gateway', 'impersonator');
  server = await connect({ url: urlFor('srv'), reconnect: false });
  await server.serve('who', (_request, ctx: HandlerContext) => {
    seen.push(ctx.userId);
    nextSeen?.(ctx.userId);
    return ctx.userId ?? null;
  });
});
after(async () => {
  await server.close();
  await broker.close();
});

async function connectAs(
  user: string,
  options: Omit<ConnectOptions, 'url'> = {},
): Promise<RpcConnection> {
  const rpc = await connect({ url: urlFor(user), reconnect: false, ...options });
  after(() => rpc.close());
  return rpc;
}

describe('user_id on requests', () => {
  test('each caller is seen as its own login', async () => {
    const alice = await connectAs('alice');
    const bob = await connectAs('bob', { replyMode: 'direct' });
    assert.equal(await alice.call('who', null, CALL), 'alice');
    assert.equal(await bob.call('who', null, CALL), 'bob');
    assert.equal(await alice.call('who', null, CALL), 'alice');
  });

  test('a forged userId: PERMISSION_DENIED, the server never sees it, the connection goes on', async () => {
    const handledBefore = seen.length;
    const forger = await connectAs('bob', { userId: 'alice' });
    await assert.rejects(forger.call('who', null, CALL), rejectsWith('PERMISSION_DENIED'));
    // The caller opens a new publishing channel for the next call: refused the same way,
    // not left hanging on the closed channel.
    const again = await Promise.allSettled([
      forger.call('who', 1, CALL),
      forger.call('who', 2, CALL),
    ]);
    for (const outcome of again) {
      assert.equal(outcome.status, 'rejected');
      rejectsWith('PERMISSION_DENIED')(outcome.reason);
    }
    assert.equal(forger.state, 'connected');
    // The same connection still serves: its server channel was never touched.
    await forger.serve('bobs', (_request, ctx: HandlerContext) => `bob serves ${ctx.userId}`);
    const alice = await connectAs('alice');
    assert.equal(await alice.call('bobs', null, CALL), 'bob serves alice');
    // Anything forged would have reached `who` before alice's request did.
    assert.equal(await alice.call('who', null, CALL), 'alice');
    assert.deepEqual(seen.slice(handledBefore), ['alice']);
  });

  test('a raw AMQP publish with a forged user_id closes its channel (406); a new channel works', async () => {
    const handledBefore = seen.length;
    const raw = new AMQPClient(urlFor('bob'));
    await raw.connect();
    after(() => (raw.closed ? undefined : raw.close()));
    const forging = await raw.channel();
    await forging.confirmSelect();
    await assert.rejects(
      forging.basicPublish('', 'who', 'null', { userId: 'alice', contentType: 'application/json' }),
      /user_id property set to 'alice'.*\(406\)/,
    );
    assert.equal(forging.closed, true);
    // The same raw connection, a new channel, the true user_id: handled.
    const honest = await raw.channel();
    const handled = new Promise<string | undefined>((resolve) => (nextSeen = resolve));
    await honest.basicPublish('', 'who', 'null', { userId: 'bob' });
    assert.equal(await handled, 'bob');
    nextSeen = undefined;
    assert.deepEqual(seen.slice(handledBefore), ['bob']);
  });

  test('a user with the impersonator tag may send any user_id (the documented caveat)', async () => {
    const gateway = await connectAs('gateway', { userId: 'alice' });
    assert.equal(await gateway.call('who', null, CALL), 'alice');
  });
});

describe('requests without user_id', () => {
  test('userId: false sends none; a requireUserId server replies UNAUTHENTICATED and acks', async () => {
    const anonymous = await connectAs('alice', { userId: false });
    assert.equal(await anonymous.call('who', null, CALL), null, 'ctx.userId is undefined');

    let handled = 0;
    const ran = deferred();
    const strict = await server.serve(
      'strict',
      () => {
        handled++;
        ran.resolve();
        return 'ran';
      },
      { requireUserId: true },
    );
    await assert.rejects(anonymous.call('strict', null, CALL), rejectsWith('UNAUTHENTICATED'));
    const alice = await connectAs('alice');
    assert.equal(await alice.call('strict', null, CALL), 'ran');
    await ran.promise;
    assert.equal(handled, 1, 'the anonymous request never ran');
    await strict.close();
    // Closing the server's channel would have requeued an unacked request.
    const raw = new AMQPClient(urlFor('srv'));
    await raw.connect();
    try {
      const channel = await raw.channel();
      const { messageCount } = await channel.queueDeclare('strict', { passive: true });
      assert.equal(messageCount, 0, 'the refused request was acked');
    } finally {
      await raw.close();
    }
  });
});
