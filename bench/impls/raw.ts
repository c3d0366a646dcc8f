/**
 * The ceiling: the same two hops as every RPC (publish to the request queue, the server
 * consumes and publishes to the reply queue, the client consumes), with no RPC bookkeeping:
 * no map of pending calls, no promise per call, no timers, one fixed reply queue declared up
 * front; replies are matched by the index in their body. The server does the same JSON work
 * as every other server and the client still checks every reply.
 * Client library: @cloudamqp/amqp-client with frameMax 131072 and TCP_NODELAY, as rabbit-rpc.
 *
 * The variants differ only in what they put on the wire (FEATURES below):
 * - `raw`: no acks (noAck on both consumers), no confirms, no properties; like rabbit-rpc,
 *   the frames written in one tick go out in one socket write (cork, uncork on the next tick).
 * - `raw-plain`: `raw` with one socket write per publish.
 * - `raw-acked`: `raw` plus what at-least-once delivery needs: the server consumes with
 *   manual acks and a prefetch, and acks each tick's requests with one multiple ack, written
 *   after that tick's replies in the same socket write.
 * - `raw-wire`: `raw-acked` plus the rest of rabbit-rpc's default wire format
 *   (docs/protocol.md): requests carry its properties and are published mandatory on a
 *   channel in confirm mode, replies are consumed on a separate channel and carry the
 *   content type and correlation id.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  AMQPClient,
  type AMQPMessage,
  type AMQPProperties,
  type AMQPTlsOptions,
} from '@cloudamqp/amqp-client';
import {
  handle,
  requestMaker,
  type BenchClient,
  type BenchServer,
  type ImplName,
  type PhaseCounts,
  type WorkerParams,
} from '../lib/common.js';

interface Features {
  /** One socket write per tick. */
  batch: boolean;
  /** Server acks (sent when the tick's write is flushed, so they need `batch`). */
  acks: boolean;
  /** rabbit-rpc's properties, mandatory, publisher confirms, a separate reply channel. */
  wire: boolean;
}

const FEATURES: Partial<Record<ImplName, Features>> = {
  'raw-plain': { batch: false, acks: false, wire: false },
  raw: { batch: true, acks: false, wire: false },
  'raw-acked': { batch: true, acks: true, wire: false },
  'raw-wire': { batch: true, acks: true, wire: true },
};

function featuresOf(impl: ImplName): Features {
  const features = FEATURES[impl];
  if (!features) throw new Error(`${impl} is not a raw implementation`);
  return features;
}

/** rabbit-rpc's default call timeout: the requests' `expiration` and `rpc-deadline`. */
const TIMEOUT_MS = 30_000;
const JSON_TYPE = 'application/json';

/**
 * Returns a function that corks the socket until the next tick, so this tick's frames go
 * out in one write. `beforeFlush` runs right before the uncork: frames it writes (the
 * tick's ack) still join that write.
 */
function tickBatcher(client: AMQPClient, beforeFlush?: () => void): () => void {
  let corked = false;
  const flush = (): void => {
    corked = false;
    beforeFlush?.();
    client.socket?.uncork();
  };
  return () => {
    if (corked) return;
    corked = true;
    client.socket?.cork();
    process.nextTick(flush);
  };
}

const noBatch = (): void => undefined;

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
  const f = featuresOf(p.impl);
  const client = await open(p.url);
  const channel = await client.channel();
  await channel.queueDeclare(p.queue, { durable: false, autoDelete: false, exclusive: false });
  const replyQueue = replyQueueOf(p.queue);
  await channel.queueDeclare(replyQueue, { durable: false, autoDelete: false, exclusive: false });
  if (f.acks) await channel.basicQos(p.prefetch);
  // Deliveries come in order, so one multiple ack of the tick's last tag acks all of them.
  let ackUpTo = 0;
  const ackTick = (): void => {
    if (ackUpTo === 0) return;
    channel.basicAck(ackUpTo, true).catch(() => undefined);
    ackUpTo = 0;
  };
  const batch = f.batch ? tickBatcher(client, f.acks ? ackTick : undefined) : noBatch;
  const replyProperties = (request: AMQPMessage): AMQPProperties | undefined => {
    if (!f.wire) return undefined;
    const { correlationId } = request.properties;
    return correlationId === undefined
      ? { contentType: JSON_TYPE }
      : { contentType: JSON_TYPE, correlationId };
  };
  await channel.basicConsume(p.queue, { noAck: !f.acks }, (message) => {
    batch();
    const reply = JSON.stringify(handle(JSON.parse(message.bodyToString() ?? 'null')));
    const to = message.properties.replyTo ?? replyQueue;
    channel.basicPublish('', to, reply, replyProperties(message)).catch(() => undefined);
    // Acked after its reply is published: at least once, as rabbit-rpc's server.
    if (f.acks) ackUpTo = message.deliveryTag;
  });
  return { close: () => client.close() };
}

/** rabbit-rpc's request properties: a new correlation id and deadline per call. */
function requestProperties(url: string, replyTo: string): () => AMQPProperties {
  // The broker checks user_id against the login, which is the URL's user or guest.
  const userId = decodeURIComponent(new URL(url).username) || 'guest';
  const expiration = String(TIMEOUT_MS);
  return () => ({
    contentType: JSON_TYPE,
    correlationId: randomUUID(),
    replyTo,
    expiration,
    headers: { 'rpc-deadline': Date.now() + TIMEOUT_MS },
    userId,
  });
}

export async function openClient(p: WorkerParams): Promise<BenchClient> {
  const f = featuresOf(p.impl);
  const client = await open(p.url);
  const channel = await client.channel();
  // raw-wire: like rabbit-rpc's caller, publish on a channel in confirm mode of its own.
  const publishChannel = f.wire ? await client.channel() : channel;
  if (f.wire) await publishChannel.confirmSelect();
  const replyQueue = replyQueueOf(p.queue);
  const properties = f.wire ? requestProperties(p.url, replyQueue) : undefined;
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

  const batch = f.batch ? tickBatcher(client) : noBatch;
  const send = (): void => {
    batch();
    const k = sent++;
    started[k] = performance.now();
    const body = JSON.stringify(make(base + k));
    // Confirms (raw-wire) are waited for by nobody: only their wire cost counts.
    publishChannel.basicPublish('', p.queue, body, properties?.(), f.wire).catch(() => undefined);
  };

  await channel.basicConsume(replyQueue, { noAck: true }, (message) => {
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
