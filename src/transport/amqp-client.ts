/**
 * The one module that uses @cloudamqp/amqp-client itself: opening a connection, dropping
 * one, and the two tricks played on the library for speed and memory (its socket corked
 * for a tick, its buffer pool bounded). test/unit/amqp-client-internals.test.ts and
 * test/integration/amqp-client-internals.test.ts fail if the shapes they rely on change.
 */
import { Buffer } from 'node:buffer';
import { AMQPClient, type AMQPTlsOptions } from '@cloudamqp/amqp-client';
import { AMQPView } from '@cloudamqp/amqp-client/amqp-view';
import type { AmqpClientLike, AmqpTransport, AmqpTransportOptions } from './types.js';
import { RpcError } from '../errors.js';
import { redactUrl } from '../options/url.js';
import { connectError } from './errors.js';

/**
 * Opens one AMQP connection to one URL, bounded by `connectTimeoutMs`, with Nagle off
 * (without TCP_NODELAY, sequential RPC stalls on delayed ACKs: 45 calls/s).
 */
export async function openAmqp(url: string, options: AmqpTransportOptions): Promise<AMQPClient> {
  const target = new URL(url);
  target.searchParams.set('frameMax', String(options.frameMax));
  target.searchParams.set('heartbeat', String(options.heartbeatSec));
  if (options.connectionName !== undefined) target.searchParams.set('name', options.connectionName);
  // The library spreads these into net.connect / tls.connect; its type lists only TLS fields.
  const socketOptions = { noDelay: true, ...options.tls } as AMQPTlsOptions;
  const client = new AMQPClient(target.toString(), socketOptions, null);
  boundBufferPool(client);
  // The library logs connection errors here by default; we report them through promises.
  client.onerror = () => undefined;

  const where = redactUrl(url);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new RpcError(
          'UNAVAILABLE',
          `connecting to ${where} timed out after ${options.connectTimeoutMs} ms`,
        ),
      );
    }, options.connectTimeoutMs);
  });
  try {
    await Promise.race([client.connect(), timeout]);
    return client;
  } catch (error) {
    forceClose(client);
    throw connectError(error, url);
  } finally {
    clearTimeout(timer);
  }
}

/** Drops the socket without the close handshake; safe on a half-open client. */
export function forceClose(client: AmqpClientLike): void {
  if (client instanceof AMQPClient) client.socket?.destroy();
  else client.close().catch(() => undefined);
}

/** The default transport: {@link openAmqp} as the seam's type. */
export const amqpTransport: AmqpTransport = openAmqp;

type Socket = NonNullable<AMQPClient['socket']>;

/** Work to do just before a corked socket is flushed (e.g. sending the tick's acks). */
type FlushHook = () => void;

/** A socket's write of this tick: whether its flush is arranged, and the hooks to run before it. */
interface TickWrite {
  scheduled: boolean;
  readonly hooks: FlushHook[];
}

/**
 * Each socket's {@link TickWrite}, created once and reused. Not a property of the socket:
 * adding one to a `net.Socket` changes its shape, and Node's stream code then reads every
 * property of that socket more slowly. The socket of the tick's write is remembered until
 * its flush (not longer: that would keep a closed connection alive): the frames of one tick
 * mostly go to one socket.
 */
const tickWrites = new WeakMap<Socket, TickWrite>();
let lastSocket: Socket | undefined;
let lastWrite: TickWrite | undefined;

function tickWriteOf(socket: Socket): TickWrite {
  if (socket === lastSocket && lastWrite !== undefined) return lastWrite;
  let write = tickWrites.get(socket);
  if (write === undefined) {
    write = { scheduled: false, hooks: [] };
    tickWrites.set(socket, write);
  }
  lastSocket = socket;
  lastWrite = write;
  return write;
}

/**
 * Coalesces every frame written in this tick (requests, replies, acks) into one socket
 * write: fewer syscalls and TCP segments for the same bytes. `beforeFlush` runs once, right
 * before the write, so frames it adds (a batched ack) still join it.
 */
export function batchWritesThisTick(connection: unknown, beforeFlush?: FlushHook): void {
  const socket = socketOf(connection);
  if (!socket) {
    beforeFlush?.(); // nothing to batch (an in-memory transport): do it now
    return;
  }
  const write = corkForThisTick(socket);
  if (beforeFlush) write.hooks.push(beforeFlush);
}

/**
 * Runs `task` at the end of this tick: right before the tick's frames are written (its
 * publishes join that write), or in a microtask on a transport without a socket. For work
 * that gathers what a tick brings, such as a batch of calls.
 */
export function atEndOfTick(connection: unknown, task: FlushHook): void {
  const socket = socketOf(connection);
  if (!socket) {
    queueMicrotask(task);
    return;
  }
  corkForThisTick(socket).hooks.push(task);
}

function socketOf(connection: unknown): Socket | undefined {
  return connection instanceof AMQPClient ? connection.socket : undefined;
}

/**
 * Corks the socket until the end of this tick. Its own flag, not `writableCorked`: the
 * hooks must run even if something else holds the socket corked.
 */
function corkForThisTick(socket: Socket): TickWrite {
  const write = tickWriteOf(socket);
  if (!write.scheduled) {
    write.scheduled = true;
    socket.cork();
    process.nextTick(flush, socket, write);
  }
  return write;
}

function flush(socket: Socket, write: TickWrite): void {
  const hooks = write.hooks;
  // Hooks may add frames and more hooks (a batch of calls publishes, and its publishes
  // write): all of them join this write.
  for (let i = 0; i < hooks.length; i++) {
    try {
      hooks[i]?.();
    } catch (error) {
      // A bug of ours: said, but neither thrown from a tick (it would crash the host) nor
      // allowed to leave the socket corked.
      process.emitWarning(`rabbit-rpc: a write hook failed: ${String(error)}`);
    }
  }
  hooks.length = 0;
  write.scheduled = false;
  if (lastSocket === socket) {
    lastSocket = undefined;
    lastWrite = undefined;
  }
  socket.uncork();
}

/**
 * @cloudamqp/amqp-client encodes each publish into a buffer taken from its pool (a fresh
 * `frameMax`-sized one when the pool is empty) and holds that buffer until the socket has
 * written it. Calls issued in one tick are all encoded before any write completes, so each
 * took a buffer of its own: 20,000 small calls held 313 MB (16 KiB each, with the earlier
 * 16 KiB pool), 10,000 with 128 KiB buffers 1.3 GB.
 *
 * Here every publish of a connection is encoded into one scratch buffer instead, and the
 * frames are copied out into a buffer of their exact size as they are handed to the socket.
 * Encoding and sending happen in one synchronous stretch of `basicPublish` (no await in
 * between), so the scratch is free again when the next publish takes it. A small call then
 * holds its frames' bytes (a few hundred) until the write goes out, at the price of one
 * copy of them. A body too large for the scratch gets an exact-size buffer from the library
 * itself, sent without a copy.
 */
export function boundBufferPool(client: AMQPClient): void {
  // Neither is in the library's typings; left alone if a later version drops them.
  const internals = client as unknown as {
    bufferPool?: unknown;
    send?: unknown;
    frameMax?: unknown;
  };
  const pool = internals.bufferPool;
  const send = internals.send;
  if (!Array.isArray(pool) || typeof send !== 'function') return;
  const views = pool as AMQPView[];
  let scratch: AMQPView | undefined;
  views.pop = function pop(): AMQPView {
    // frameMax is known only once the connection is tuned: sized at first use.
    const frameMax = typeof internals.frameMax === 'number' ? internals.frameMax : 0;
    if (!scratch || scratch.byteLength < frameMax) {
      scratch = new AMQPView(new ArrayBuffer(Math.max(frameMax, MIN_SCRATCH_BYTES)));
    }
    return scratch;
  };
  // The library gives each buffer back after its write; the scratch never left.
  views.push = function push(): number {
    return 0;
  };
  const sendBytes = send as (this: AMQPClient, bytes: Uint8Array) => Promise<void>;
  internals.send = function sendCopy(this: AMQPClient, bytes: Uint8Array): Promise<void> {
    // Buffer.from copies: small frames land in Node's shared 8 KiB slab.
    const own =
      scratch !== undefined && bytes.buffer === scratch.buffer ? Buffer.from(bytes) : bytes;
    return sendBytes.call(this, own);
  };
}

/** The scratch is at least this large, as the library's own frame buffers. */
const MIN_SCRATCH_BYTES = 128 * 1024;
