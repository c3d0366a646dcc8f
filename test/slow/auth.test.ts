/**
 * Authentication and authorisation (scenarios 19, 20 of docs/reliability.md): refused logins
 * end connect() at once and end a reconnect loop for good; passwords never show; and the
 * least-privilege permissions documented under "Permissions" are enough, and each part is
 * needed. One private broker with its own users and vhost.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { connect, type ReplyMode, type RpcConnection } from '../../src/index.js';
import { FaultProxy, startPrivateBroker, type PrivateBroker } from '../../src/testing/index.js';
import { failOnUnhandled, uniqueQueue } from '../helpers.js';
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
  await broker.ctl('add_vhost', 'rpc');
  for (const user of ['alice', 'nobody', 'srv', 'cq', 'cd', 'ce']) {
    await broker.ctl('add_user', user, SECRET);
  }
  await broker.ctl('set_permissions', '-p', 'rpc', 'alice', '.*', '.*', '.*');
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

/** The least privileges of docs/reliability.md, "Permissions": [configure, write, read]. */
const SERVER_QUEUES = '^svc\\.';
const PERMISSIONS: Record<'server' | ReplyMode, { user: string; perms: [string, string, string] }> =
  {
    server: { user: 'srv', perms: [SERVER_QUEUES, '^amq\\.default$', SERVER_QUEUES] },
    queue: { user: 'cq', perms: ['^amq\\.gen-', '^amq\\.default$', '^amq\\.gen-'] },
    direct: { user: 'cd', perms: ['', '^amq\\.default$', ''] },
    'expiring-queue': {
      user: 'ce',
      perms: ['^rpc\\.reply\\.', '^amq\\.default$', '^rpc\\.reply\\.'],
    },
  };

async function setPermissions(user: string, perms: readonly string[]): Promise<void> {
  await broker.ctl('set_permissions', '-p', 'rpc', user, ...perms);
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
  before(async () => {
    for (const { user, perms } of Object.values(PERMISSIONS)) await setPermissions(user, perms);
  });

  for (const mode of ['queue', 'direct', 'expiring-queue'] as const) {
    test(`replyMode ${mode}: the documented permissions are enough, and each one is needed`, async () => {
      const ok = await roundTrip(mode);
      assert.equal(
        ok.called?.value,
        2,
        `failed with ${String(ok.called?.error ?? ok.served.error)}`,
      );
      const { user, perms } = PERMISSIONS[mode];
      for (let i = 0; i < 3; i++) {
        if (perms[i] === '') continue;
        const fewer = perms.map((p, j) => (j === i ? '' : p));
        await setPermissions(user, fewer);
        try {
          const result = await roundTrip(mode);
          // A refused publish (write), declare or consume: the call says PERMISSION_DENIED.
          assertCode(result.called?.error, 'PERMISSION_DENIED');
        } finally {
          await setPermissions(user, perms);
        }
      }
    });
  }

  test('the server: the documented permissions are needed, each one', async () => {
    const { user, perms } = PERMISSIONS.server;
    for (let i = 0; i < 3; i++) {
      const fewer = perms.map((p, j) => (j === i ? '' : p));
      await setPermissions(user, fewer);
      try {
        const result = await roundTrip('queue');
        // Without write, serving works but no reply can be sent: the call times out.
        const error = result.served.error ?? result.called?.error;
        assert.ok(
          error !== undefined,
          `the server worked without ${['configure', 'write', 'read'][i] ?? ''}`,
        );
      } finally {
        await setPermissions(user, perms);
      }
    }
  });
});
