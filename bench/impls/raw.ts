/**
 * The ceiling: the same two hops as every RPC (publish to the request queue, the server
 * consumes and publishes to the reply queue, the client consumes), with no RPC bookkeeping:
 * no correlation ids, no reply_to, no map of pending calls, no promise per call, no acks
 * (noAck on both consumers), one fixed reply queue declared up front. The server does the
 * same JSON work as every other server and the client still checks every reply.
 * Client library: @cloudamqp/amqp-client with frameMax 131072 and TCP_NODELAY, as rabbit-rpc.
 * Like rabbit-rpc, it coalesces the frames written in one tick into one socket write
 * (cork, uncork on the next tick); `raw-plain` is the same loop with one write per publish.
 */
import { performance } from 'node:perf_hooks';
import { AMQPClient, type AMQPTlsOptions } from '@cloudamqp/amqp-client';
import {
  handle,
  requestMaker,
  type BenchClient,
  type BenchServer,
  type PhaseCounts,
  type WorkerParams,
} from '../lib/common.js';

/** Corks the socket until the next tick, so this tick's publishes go out in one write. */
function batchThisTick(client: AMQPClient, enabled: boolean): void {
  const socket = client.socket;
  if (!enabled || !socket || socket.writableCorked > 0) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
}

export const replyQueueOf = (queue: string): string => `${queue}.reply`;

async function open(url: string): Promise<AMQPClient> {
  const target = new URL(url);
  target.searchParams.set('frameMax', '131072');
  // The library spreads these options into net.connect; its type only lists TLS fields.
  const client = new AMQPClient(target.toString(), { noDelay: true } as AMQPTlsOptions, null);
  await client.connect();
  return client;
}

export async function startServer(p: WorkerParams): Promise<BenchServer> {
  const client = await open(p.url);
  const channel = await client.channel();
  await channel.queueDeclare(p.queue, { durable: false, autoDelete: false, exclusive: false });
  const replyQueue = replyQueueOf(p.queue);
  await channel.queueDeclare(replyQueue, { durable: false, autoDelete: false, exclusive: false });
  const batch = p.impl === 'raw';
  await channel.basicConsume(p.queue, { noAck: true }, (message) => {
    batchThisTick(client, batch);
    const reply = JSON.stringify(handle(JSON.parse(message.bodyToString() ?? 'null')));
    channel.basicPublish('', replyQueue, reply).catch(() => undefined);
  });
  return { close: () => client.close() };
}

export async function openClient(p: WorkerParams): Promise<BenchClient> {
  const client = await open(p.url);
  const channel = await client.channel();
  const make = requestMaker(p.payload);
  let unknown = 0;
  // State of the running phase; replies index plain arrays by `i - base`.
  let base = 0;
  let total = 0;
  let sent = 0;
  let received = 0;
  let started = new Float64Array(0);
  let seen = new Uint8Array(0);
  let lat: Float64Array | undefined;
  let counts: PhaseCounts | undefined;
  let done: (() => void) | undefined;

  const batch = p.impl === 'raw';
  const send = (): void => {
    batchThisTick(client, batch);
    const k = sent++;
    started[k] = performance.now();
    channel.basicPublish('', p.queue, JSON.stringify(make(base + k))).catch(() => undefined);
  };

  await channel.basicConsume(replyQueueOf(p.queue), { noAck: true }, (message) => {
    const reply = JSON.parse(message.bodyToString() ?? 'null') as {
      i?: unknown;
      ok?: unknown;
    } | null;
    const k = typeof reply?.i === 'number' ? reply.i - base : -1;
    if (!counts || k < 0 || k >= total || seen[k] === 1 || k >= sent) {
      unknown++;
      return;
    }
    seen[k] = 1;
    received++;
    if (reply?.ok === true) {
      counts.ok++;
      if (lat) lat[k] = performance.now() - (started[k] ?? 0);
    } else {
      counts.mismatches++;
    }
    if (sent < total) send();
    if (received === total) done?.();
  });

  return {
    runPhase(n, phaseBase, phaseLat, phaseCounts) {
      return new Promise<void>((resolve) => {
        base = phaseBase;
        total = n;
        sent = 0;
        received = 0;
        started = new Float64Array(n);
        seen = new Uint8Array(n);
        lat = phaseLat;
        counts = phaseCounts;
        done = resolve;
        for (let j = 0; j < Math.min(p.conc, n); j++) send();
      });
    },
    unknownReplies: () => unknown,
    close: () => client.close(),
  };
}
