import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import {
  AMQP_URL,
  assertCode,
  connectForTest,
  deferred,
  eventually,
  failOnUnhandled,
  refusesTransientQueues,
  uniqueQueue,
} from '../helpers.js';

failOnUnhandled();

let plain: AMQPClient;
let channel: AMQPChannel;
before(async () => {
  plain = new AMQPClient(AMQP_URL);
  await plain.connect();
  channel = await plain.channel();
});
after(() => plain.close());

test('with a dead-letter exchange, an undecodable request is answered, then dead-lettered', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('dlx');
  const deadLetters = uniqueQueue('dlx-dead');
  const exchange = `${deadLetters}.x`;
  await channel.exchangeDeclare(exchange, 'fanout', { autoDelete: true });
  await channel.queueDeclare(deadLetters, { autoDelete: false });
  await channel.queueBind(deadLetters, exchange, '');
  const dead = deferred<AMQPMessage>();
  await channel.basicConsume(deadLetters, { noAck: true }, (message) => dead.resolve(message));
  let handled = 0;
  await rpc.serve(queue, () => ++handled, { deadLetterExchange: exchange });

  const { name: replyQueue } = await channel.queueDeclare('', { exclusive: true });
  const reply = deferred<AMQPMessage>();
  await channel.basicConsume(replyQueue, { noAck: true }, (message) => reply.resolve(message));
  await channel.basicPublish('', queue, '{broken', { replyTo: replyQueue, correlationId: 'p1' });

  assert.equal((await reply.promise).properties.headers?.['rpc-status'], 'INVALID_ARGUMENT');
  const letter = await dead.promise;
  assert.equal(Buffer.from(letter.body ?? []).toString(), '{broken');
  const death = letter.properties.headers?.['x-death'] as Array<Record<string, unknown>>;
  assert.equal(death[0]?.['reason'], 'rejected');
  assert.equal(handled, 0);
  // Requests that decode are still acked normally.
  assert.equal(await rpc.call(queue, 'fine'), 1);
});

test('queueType quorum declares a durable quorum queue that serves calls', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('quorum');
  await rpc.serve(queue, (request) => request, { queueType: 'quorum', deliveryLimit: 3 });
  assert.equal(await rpc.call(queue, 'q'), 'q');
  // Re-declaring with other arguments fails, which proves the queue is a quorum queue.
  const probe = await plain.channel();
  await assert.rejects(
    probe.queueDeclare(queue, { durable: true, autoDelete: false }),
    /inequivalent arg/,
  );
});

test('inconsistent queue options are INVALID_ARGUMENT', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('badopts');
  await assert.rejects(
    rpc.serve(queue, () => 1, { deliveryLimit: 3 }),
    { code: 'INVALID_ARGUMENT' },
  );
  await assert.rejects(
    rpc.serve(queue, () => 1, { queueType: 'quorum', durable: false }),
    {
      code: 'INVALID_ARGUMENT',
    },
  );
});

test('by default serve() declares a durable queue, which every RabbitMQ from 3.10 to 4.3 accepts', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('durable-default');
  await rpc.serve(queue, () => 'ok');
  assert.equal(await rpc.call(queue, null), 'ok');
  const probe = await plain.channel();
  await assert.rejects(
    probe.queueDeclare(queue, { durable: false, autoDelete: false }),
    /inequivalent arg 'durable'/,
  );
});

test('a queue declared elsewhere with other arguments is served as it is, with a warning', async () => {
  const warnings: Array<{ context: Readonly<Record<string, unknown>>; message: string }> = [];
  const rpc = await connectForTest({
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (context, message) => warnings.push({ context, message }),
      error: () => undefined,
    },
  });
  const queue = uniqueQueue('ops-made');
  // As ops would make it: a length limit rabbit-rpc knows nothing about.
  await channel.queueDeclare(queue, { durable: true, autoDelete: false }, { 'x-max-length': 100 });
  await rpc.serve(queue, () => 'as is');
  assert.equal(await rpc.call(queue, null), 'as is');
  const warning = warnings.find((entry) => entry.context['queue'] === queue);
  assert.ok(warning, 'a warning names the queue');
  assert.match(String(warning.context['reason']), /x-max-length/);
});

test('a queue that lacks what serve() was explicitly asked for: FAILED_PRECONDITION naming the option', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('inequivalent');
  await channel.queueDeclare(queue, { durable: true, autoDelete: false });
  const error = await rpc
    .serve(queue, () => 1, { queueType: 'quorum' })
    .then(
      () => assert.fail('serve() should have failed'),
      (thrown: unknown) => assertCode(thrown, 'FAILED_PRECONDITION'),
    );
  assert.match(error.message, new RegExp(`"${queue.replace(/\./g, '\\.')}"`));
  assert.match(error.message, /x-queue-type/);
  assert.match(error.message, /queueType/);
  // The connection is still usable, and declare: false takes the queue as it is.
  await rpc.serve(queue, () => 'as is', { declare: false });
  assert.equal(await rpc.call(queue, null), 'as is');
});

test('durable: false: refused with FAILED_PRECONDITION where the broker denies transient queues (4.3), no reconnect loop', async () => {
  const rpc = await connectForTest({ reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
  const queue = uniqueQueue('transient');
  if (!(await refusesTransientQueues())) {
    // RabbitMQ 3.10 to 4.2 by default: a non-durable queue, as asked.
    await rpc.serve(queue, () => 'transient', { durable: false });
    assert.equal(await rpc.call(queue, null), 'transient');
    const probe = await plain.channel();
    await assert.rejects(
      probe.queueDeclare(queue, { durable: true }),
      /inequivalent arg 'durable'/,
    );
    return;
  }
  const error = await rpc
    .serve(queue, () => 1, { durable: false })
    .then(
      () => assert.fail('serve() should have failed'),
      (thrown: unknown) => assertCode(thrown, 'FAILED_PRECONDITION'),
    );
  assert.ok(error.message.includes(`"${queue}"`), error.message);
  assert.ok(error.message.includes('durable: false'), error.message);
  assert.ok(
    error.message.includes('deprecated_features.permit.transient_nonexcl_queues = true'),
    error.message,
  );
  // The refusal is a connection error (541): the connection comes back once, and stays.
  await eventually(() => rpc.state === 'connected' && rpc.stats().reconnects === 1, 'reconnect');
  await rpc.serve(queue, () => 'durable');
  assert.equal(await rpc.call(queue, null), 'durable');
  assert.equal(rpc.stats().reconnects, 1);
});
