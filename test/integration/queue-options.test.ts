import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AMQPClient, type AMQPChannel, type AMQPMessage } from '@cloudamqp/amqp-client';
import { AMQP_URL, connectForTest, deferred, failOnUnhandled, uniqueQueue } from '../helpers.js';

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

test('serve() on a queue declared elsewhere with other arguments: FAILED_PRECONDITION', async () => {
  const rpc = await connectForTest();
  const queue = uniqueQueue('inequivalent');
  await channel.queueDeclare(queue, { durable: true, autoDelete: false });
  await assert.rejects(
    rpc.serve(queue, () => 1),
    { code: 'FAILED_PRECONDITION' },
  );
  // The connection is still usable, and declare: false takes the queue as it is.
  await rpc.serve(queue, () => 'as is', { declare: false });
  assert.equal(await rpc.call(queue, null), 'as is');
});
