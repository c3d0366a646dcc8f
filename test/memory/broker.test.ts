/** The in-memory broker's own AMQP semantics, driven through raw clients. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryBroker } from '../../src/testing/index.js';
import { deferred, failOnUnhandled } from '../helpers.js';
import {
  Inbox,
  bytes,
  code,
  connectMemory,
  rawChannel,
  replyCode,
  settleBroker,
  text,
} from './memory-helpers.js';

failOnUnhandled();

/** A rejection's AMQP reply code. */
async function failsWith(promise: Promise<unknown>, expected: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal(replyCode(error), expected, String(error));
    return true;
  });
}

describe('queue declarations', () => {
  test("'' gets a server-generated amq.gen- name; passive declare of a missing queue is 404", async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    const { name } = await channel.queueDeclare('', { exclusive: true });
    assert.match(name, /^amq\.gen-/);
    await failsWith(channel.queueDeclare('nope', { passive: true }), 404);
    assert.equal(channel.closed, true, 'a channel error closes the channel');
    await assert.rejects(channel.basicQos(1)); // Channel is closed
  });

  test('inequivalent redeclare is 406, and serve() rejects FAILED_PRECONDITION', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('svc', { durable: false }, { 'x-message-ttl': 1000 });
    const again = await rawChannel(broker);
    await again.queueDeclare('svc', { durable: false }, { 'x-message-ttl': 1000 });
    await failsWith(again.queueDeclare('svc', { durable: true }, { 'x-message-ttl': 1000 }), 406);
    const other = await rawChannel(broker);
    await failsWith(other.queueDeclare('svc', { durable: false }, { 'x-message-ttl': 5 }), 406);
    const rpc = await connectMemory(broker);
    await assert.rejects(
      rpc.serve('svc', () => null, { durable: true }),
      code('FAILED_PRECONDITION'),
    );
  });

  test('exclusive queues: another connection gets 405; they go with their connection', async () => {
    const broker = new MemoryBroker();
    const owner = await broker.connectClient();
    const mine = await owner.channel();
    await mine.queueDeclare('private', { exclusive: true });
    const theirs = await rawChannel(broker);
    await failsWith(theirs.queueDeclare('private', { exclusive: true }), 405);
    const theirs2 = await rawChannel(broker);
    await failsWith(
      theirs2.basicConsume('private', { noAck: true }, () => undefined),
      405,
    );
    broker.disconnectAll();
    assert.equal(broker.queue('private'), undefined);
    const again = await broker.connectClient();
    const channel = await again.channel();
    await channel.queueDeclare('closed-by-client', { exclusive: true });
    await again.close();
    assert.equal(broker.queue('closed-by-client'), undefined);
  });

  test('auto-delete queues go with their last consumer; x-expires queues when unused', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('auto', { autoDelete: true });
    await settleBroker();
    assert.ok(broker.queue('auto'), 'not deleted before it had a consumer');
    const a = await channel.basicConsume('auto', { noAck: true }, () => undefined);
    const b = await channel.basicConsume('auto', { noAck: true }, () => undefined);
    await a.cancel();
    assert.ok(broker.queue('auto'));
    await b.cancel();
    assert.equal(broker.queue('auto'), undefined);

    await channel.queueDeclare('expiring', { durable: false }, { 'x-expires': 20 });
    const consumer = await channel.basicConsume('expiring', { noAck: true }, () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.ok(broker.queue('expiring'), 'in use: kept');
    await consumer.cancel();
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(broker.queue('expiring'), undefined);
  });

  test('deleting a queue cancels its consumers (wait() rejects); cancel() resolves wait()', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('doomed', {});
    const doomed = await channel.basicConsume('doomed', { noAck: true }, () => undefined);
    const waiting = doomed.wait();
    assert.equal(broker.deleteQueue('doomed'), 0);
    await assert.rejects(waiting, /cancelled by the server/);
    await channel.queueDeclare('kept', {});
    const kept = await channel.basicConsume('kept', { noAck: true }, () => undefined);
    const keptWaiting = kept.wait();
    await kept.cancel();
    await keptWaiting;
    assert.equal(channel.closed, false);
  });
});

describe('publishing and delivery', () => {
  test('default exchange routing; mandatory and unroutable: basic.return, asynchronously', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    const returned = deferred<{ code: number | undefined; text: string | undefined }>();
    let sync = true;
    channel.onReturn = (message) => {
      assert.equal(sync, false, 'never inside basicPublish');
      returned.resolve({ code: message.replyCode, text: message.replyText });
    };
    void channel.basicPublish('', 'nowhere', bytes('x'), {}, true);
    sync = false;
    assert.deepEqual(await returned.promise, { code: 312, text: 'NO_ROUTE' });
    // Without mandatory it is silently dropped; an unknown exchange closes the channel.
    await channel.basicPublish('', 'nowhere', bytes('x'), {});
    await channel.basicPublish('no-such-exchange', 'q', bytes('x'), {});
    assert.equal(channel.closed, true);
  });

  test('the consumer gets copies: the publisher may reuse its buffer and headers', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('copy', {});
    const body = bytes('abc');
    const headers = { n: 1 };
    await channel.basicPublish('', 'copy', body, { headers });
    body[0] = 0x7a;
    headers.n = 2;
    const inbox = new Inbox();
    await channel.basicConsume('copy', { noAck: true }, inbox.push);
    const message = await inbox.next();
    assert.equal(text(message), 'abc');
    assert.deepEqual(message.properties.headers, { n: 1 });
  });

  test('prefetch bounds unacked deliveries; tags increase per channel; ack frees a slot', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('work', {});
    for (let i = 0; i < 5; i++) await channel.basicPublish('', 'work', bytes(String(i)), {});
    await channel.basicQos(2);
    const inbox = new Inbox();
    await channel.basicConsume('work', { noAck: false }, inbox.push);
    const first = await inbox.next();
    const second = await inbox.next();
    await settleBroker();
    assert.equal(inbox.received.length, 2);
    assert.deepEqual([first.deliveryTag, second.deliveryTag], [1, 2]);
    assert.deepEqual(broker.queue('work'), {
      ...broker.queue('work'),
      messageCount: 3,
      unackedCount: 2,
    });
    await channel.basicAck(first.deliveryTag);
    const third = await inbox.next();
    assert.equal(text(third), '2');
    assert.equal(third.deliveryTag, 3);
    // A multiple ack settles everything up to its tag.
    await channel.basicAck(third.deliveryTag, true);
    assert.deepEqual((await Promise.all([inbox.next(), inbox.next()])).map(text), ['3', '4']);
  });

  test('an unknown or double ack closes the channel with 406, requeueing its deliveries', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('acks', {});
    await channel.basicPublish('', 'acks', bytes('a'), {});
    await channel.basicPublish('', 'acks', bytes('b'), {});
    const inbox = new Inbox();
    const consumer = await channel.basicConsume('acks', { noAck: false }, inbox.push);
    const ended = consumer.wait();
    const a = await inbox.next();
    await inbox.next();
    await channel.basicAck(a.deliveryTag);
    await channel.basicAck(a.deliveryTag); // resolves, like the library; the channel closes
    await assert.rejects(ended, (error: unknown) => replyCode(error) === 406);
    assert.equal(channel.closed, true);
    assert.equal(broker.queue('acks')?.messageCount, 1, 'b is back in the queue');
  });

  test('closing a channel requeues its unacked deliveries in order, at the head, redelivered', async () => {
    const broker = new MemoryBroker();
    const publisher = await rawChannel(broker);
    await publisher.queueDeclare('requeue', {});
    for (const word of ['a', 'b', 'c'])
      await publisher.basicPublish('', 'requeue', bytes(word), {});
    const first = await rawChannel(broker);
    await first.basicQos(2);
    const inbox = new Inbox();
    await first.basicConsume('requeue', { noAck: false }, inbox.push);
    await inbox.next();
    await inbox.next();
    await first.close();
    const second = await rawChannel(broker);
    const again = new Inbox();
    await second.basicConsume('requeue', { noAck: true }, again.push);
    const messages = [await again.next(), await again.next(), await again.next()];
    assert.deepEqual(messages.map(text), ['a', 'b', 'c']);
    assert.deepEqual(
      messages.map((message) => message.redelivered),
      [true, true, false],
    );
  });

  test('nack with requeue puts the message back first, redelivered; without, it is dropped', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('nack', {});
    await channel.basicPublish('', 'nack', bytes('x'), {});
    const inbox = new Inbox();
    await channel.basicConsume('nack', { noAck: false }, inbox.push);
    const first = await inbox.next();
    assert.equal(first.redelivered, false);
    await channel.basicNack(first.deliveryTag, true);
    const second = await inbox.next();
    assert.equal(second.redelivered, true);
    await channel.basicNack(second.deliveryTag, false);
    await settleBroker();
    assert.equal(broker.queue('nack')?.messageCount, 0);
    assert.equal(broker.queue('nack')?.unackedCount, 0);
  });

  test('dead-lettering through the default exchange: rejected and expired messages, x-death', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('dead', {});
    await channel.queueDeclare(
      'live',
      {},
      { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dead' },
    );
    await channel.basicPublish('', 'live', bytes('expired'), { expiration: '5' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await channel.basicPublish('', 'live', bytes('rejected'), {});
    const inbox = new Inbox();
    await channel.basicConsume('live', { noAck: false }, inbox.push);
    const rejected = await inbox.next();
    assert.equal(text(rejected), 'rejected');
    await channel.basicNack(rejected.deliveryTag, false);
    const dead = new Inbox();
    await channel.basicConsume('dead', { noAck: true }, dead.push);
    const deaths = [await dead.next(), await dead.next()].map((message) => {
      const [death] = message.properties.headers?.['x-death'] as Array<Record<string, unknown>>;
      return [text(message), death?.['reason'], death?.['queue']];
    });
    assert.deepEqual(deaths, [
      ['expired', 'expired', 'live'],
      ['rejected', 'rejected', 'live'],
    ]);
  });

  test('per-message expiration and x-message-ttl: expired messages are never delivered', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('ttl', {}, { 'x-message-ttl': 10 });
    await channel.basicPublish('', 'ttl', bytes('old'), {});
    await channel.queueDeclare('per-message', {});
    await channel.basicPublish('', 'per-message', bytes('old'), { expiration: '10' });
    await channel.basicPublish('', 'per-message', bytes('kept'), {});
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(broker.queue('ttl')?.messageCount, 0);
    const inbox = new Inbox();
    await channel.basicConsume('per-message', { noAck: true }, inbox.push);
    assert.equal(text(await inbox.next()), 'kept');
  });

  test('quorum queues count deliveries and dead-letter past x-delivery-limit', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await failsWith(
      channel.queueDeclare('qq', { durable: false }, { 'x-queue-type': 'quorum' }),
      406,
    );
    const ch = await rawChannel(broker);
    await ch.queueDeclare(
      'qq',
      { durable: true },
      { 'x-queue-type': 'quorum', 'x-delivery-limit': 2 },
    );
    await ch.basicPublish('', 'qq', bytes('poison'), {});
    const inbox = new Inbox();
    await ch.basicConsume('qq', { noAck: false }, inbox.push);
    const counts: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const message = await inbox.next();
      counts.push(message.properties.headers?.['x-delivery-count']);
      await ch.basicNack(message.deliveryTag, true);
    }
    await settleBroker();
    assert.deepEqual(counts, [undefined, 1, 2]);
    assert.equal(inbox.received.length, 3);
    assert.equal(broker.queue('qq')?.messageCount, 0);
  });

  test('exclusive consumers: a second consumer gets 403', async () => {
    const broker = new MemoryBroker();
    const channel = await rawChannel(broker);
    await channel.queueDeclare('solo', {});
    await channel.basicConsume('solo', { noAck: true, exclusive: true }, () => undefined);
    const other = await rawChannel(broker);
    await failsWith(
      other.basicConsume('solo', { noAck: true }, () => undefined),
      403,
    );
  });
});

describe('Direct Reply-to', () => {
  test('consume first, in no-ack mode; replies reach the consumer; dropped once it is gone', async () => {
    const broker = new MemoryBroker();
    const early = await rawChannel(broker);
    await early.basicPublish('', 'svc', bytes('x'), { replyTo: 'amq.rabbitmq.reply-to' });
    assert.equal(early.closed, true, '406: fast reply consumer does not exist');
    const acking = await rawChannel(broker);
    await failsWith(
      acking.basicConsume('amq.rabbitmq.reply-to', { noAck: false }, () => undefined),
      406,
    );

    const requester = await rawChannel(broker);
    const server = await rawChannel(broker);
    await server.queueDeclare('svc', {});
    const requests = new Inbox();
    await server.basicConsume('svc', { noAck: true }, requests.push);
    const replies = new Inbox();
    const replyConsumer = await requester.basicConsume(
      'amq.rabbitmq.reply-to',
      { noAck: true },
      replies.push,
    );
    await requester.basicPublish('', 'svc', bytes('ping'), { replyTo: 'amq.rabbitmq.reply-to' });
    const request = await requests.next();
    const address = request.properties.replyTo ?? '';
    assert.match(address, /^amq\.rabbitmq\.reply-to\.[\w-]+$/);
    await server.basicPublish('', address, bytes('pong'), {});
    assert.equal(text(await replies.next()), 'pong');
    await replyConsumer.cancel();
    await server.basicPublish('', address, bytes('lost'), {});
    await settleBroker();
    assert.equal(replies.received.length, 1);
    assert.equal(server.closed, false);
  });
});

describe('connections', () => {
  test('disconnectAll: ondisconnect fires with a 320 error, unacked deliveries are redelivered', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient();
    const disconnected = deferred<Error | undefined>();
    client.ondisconnect = (error) => disconnected.resolve(error);
    const channel = await client.channel();
    await channel.queueDeclare('jobs', {});
    await channel.basicPublish('', 'jobs', bytes('job'), {});
    const inbox = new Inbox();
    const consumer = await channel.basicConsume('jobs', { noAck: false }, inbox.push);
    const ended = consumer.wait();
    await inbox.next();
    broker.disconnectAll('test');
    assert.equal(replyCode(await disconnected.promise), 320);
    await assert.rejects(ended);
    assert.equal(client.closed, true);
    assert.deepEqual(
      [broker.queue('jobs')?.messageCount, broker.queue('jobs')?.unackedCount],
      [1, 0],
    );
    const next = await rawChannel(broker);
    const again = new Inbox();
    await next.basicConsume('jobs', { noAck: true }, again.push);
    assert.equal((await again.next()).redelivered, true);
  });

  test('client.close() does not fire ondisconnect, and its consumers end quietly', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient();
    let fired = false;
    client.ondisconnect = () => (fired = true);
    const channel = await client.channel();
    await channel.queueDeclare('q', {});
    const consumer = await channel.basicConsume('q', { noAck: true }, () => undefined);
    const ended = consumer.wait();
    await client.close();
    await ended;
    assert.equal(fired, false);
    assert.equal(broker.connectionCount, 0);
    await assert.rejects(client.channel());
  });

  test('block(): onblocked fires and publishes reject until unblock()', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient();
    const events: string[] = [];
    client.onblocked = (reason) => events.push(`blocked ${reason}`);
    client.onunblocked = () => events.push('unblocked');
    const channel = await client.channel();
    await channel.queueDeclare('q', {});
    broker.block('low on memory');
    assert.equal(client.blocked, 'low on memory');
    await assert.rejects(channel.basicPublish('', 'q', bytes('x'), {}), /blocked/);
    broker.unblock();
    await channel.basicPublish('', 'q', bytes('x'), {});
    assert.deepEqual(events, ['blocked low on memory', 'unblocked']);
    assert.equal(broker.queue('q')?.messageCount, 1);
  });

  test('user_id must match the connection user (406)', async () => {
    const broker = new MemoryBroker();
    const client = await broker.connectClient('amqp://alice:pw@memory');
    const channel = await client.channel();
    await channel.queueDeclare('q', {});
    await channel.basicPublish('', 'q', bytes('x'), { userId: 'alice' });
    assert.equal(broker.queue('q')?.messageCount, 1);
    await channel.basicPublish('', 'q', bytes('x'), { userId: 'mallory' });
    assert.equal(channel.closed, true);
    await client.close();
  });
});
