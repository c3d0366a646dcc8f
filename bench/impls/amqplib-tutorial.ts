/**
 * RabbitMQ tutorial six (RPC) with amqplib, as people write it: the server declares the
 * queue, sets prefetch, publishes the reply with the correlation id, then acks; the client
 * declares an exclusive server-named reply queue (noAck), makes a randomUUID correlation id
 * per call and keeps a Map of pending calls so many calls can be in flight. TCP_NODELAY on.
 */
import { randomUUID } from 'node:crypto';
import amqp from 'amqplib';
import {
  closedLoop,
  handle,
  requestMaker,
  type BenchClient,
  type BenchServer,
  type WorkerParams,
} from '../lib/common.js';

export async function startServer(p: WorkerParams): Promise<BenchServer> {
  const connection = await amqp.connect(p.url, { noDelay: true });
  const channel = await connection.createChannel();
  await channel.assertQueue(p.queue, { durable: false });
  await channel.prefetch(p.prefetch);
  await channel.consume(p.queue, (message) => {
    if (!message) return;
    const reply = handle(JSON.parse(message.content.toString()));
    channel.sendToQueue(message.properties.replyTo as string, Buffer.from(JSON.stringify(reply)), {
      correlationId: message.properties.correlationId as string,
    });
    channel.ack(message);
  });
  return { close: () => connection.close() };
}

interface Pending {
  resolve: (reply: unknown) => void;
}

export async function openClient(p: WorkerParams): Promise<BenchClient> {
  const connection = await amqp.connect(p.url, { noDelay: true });
  const channel = await connection.createChannel();
  const pending = new Map<string, Pending>();
  let unknown = 0;
  const { queue: replyTo } = await channel.assertQueue('', { exclusive: true });
  await channel.consume(
    replyTo,
    (message) => {
      if (!message) return;
      const id = message.properties.correlationId as string;
      const call = pending.get(id);
      if (!call) {
        unknown++;
        return;
      }
      pending.delete(id);
      call.resolve(JSON.parse(message.content.toString()));
    },
    { noAck: true },
  );
  const call = (request: unknown): Promise<unknown> =>
    new Promise((resolve) => {
      const correlationId = randomUUID();
      pending.set(correlationId, { resolve });
      channel.sendToQueue(p.queue, Buffer.from(JSON.stringify(request)), {
        correlationId,
        replyTo,
      });
    });
  const make = requestMaker(p.payload);
  return {
    runPhase: (n, base, lat, counts) => closedLoop(call, make, n, p.conc, base, lat, counts),
    unknownReplies: () => unknown,
    close: () => connection.close(),
  };
}
