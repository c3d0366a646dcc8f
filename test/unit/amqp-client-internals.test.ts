// The internals of @cloudamqp/amqp-client that rabbit-rpc relies on, without a broker: its
// buffer pool and `send` (boundBufferPool makes every publish encode into one scratch buffer
// and copies the frames out as they are sent, D12 and issue 13), and its socket (corked by
// batchWritesThisTick, D12). An upgrade that renames or reshapes them, or that no longer
// sends a publish in the same synchronous stretch that encodes it, would silently undo the
// memory bound, corrupt frames or the write batching; these tests fail instead. They use the library
// as the rest of rabbit-rpc does (a client, a channel on it, its publish path), with a
// stand-in socket that records the writes.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { AMQPChannel, AMQPClient } from '@cloudamqp/amqp-client';
import { AMQPView } from '@cloudamqp/amqp-client/amqp-view';
import {
  atEndOfTick,
  batchWritesThisTick,
  boundBufferPool,
} from '../../src/transport/amqp-client.js';

/** The library's internals as we use them (not in its typings). */
interface Internals {
  bufferPool: unknown;
  socket: Socket | undefined;
  send: (bytes: Uint8Array) => Promise<void>;
}

/**
 * A socket that takes writes and remembers each physical write (one per uncork or write)
 * and the bytes of every chunk as they arrive.
 */
class RecordingSocket extends Writable {
  readonly writes: number[] = [];
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.writes.push(1);
    this.chunks.push(Buffer.from(chunk));
    done();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, done: () => void): void {
    this.writes.push(chunks.length);
    for (const { chunk } of chunks) this.chunks.push(Buffer.from(chunk));
    done();
  }
}

function client(): AMQPClient & Internals {
  // Never connected: nothing here opens a socket.
  return new AMQPClient('amqp://guest:guest@127.0.0.1:1', {}, null) as AMQPClient & Internals;
}

/** A client whose frames go to a recording socket, and a channel on it. */
function wired(): { amqp: AMQPClient & Internals; socket: RecordingSocket; channel: AMQPChannel } {
  const amqp = client();
  const socket = new RecordingSocket();
  amqp.socket = socket as unknown as Socket;
  return { amqp, socket, channel: new AMQPChannel(amqp, 1) };
}

test('a client has a buffer pool and a send method; boundBufferPool turns the pool into one scratch buffer', () => {
  const amqp = client();
  assert.ok(Array.isArray(amqp.bufferPool), 'AMQPClient#bufferPool is an array');
  assert.equal(typeof amqp.send, 'function', 'AMQPClient#send exists');
  boundBufferPool(amqp);
  const pool = amqp.bufferPool as AMQPView[];
  const scratch = pool.pop();
  assert.ok(scratch instanceof AMQPView);
  assert.ok(scratch.byteLength >= 128 * 1024, 'at least a frame of the default frameMax');
  assert.equal(pool.pop(), scratch, 'every publish gets the same scratch buffer');
  // Nothing given back is kept: the scratch never left.
  for (let i = 0; i < 600; i++) pool.push(new AMQPView(new ArrayBuffer(8)));
  assert.equal(pool.length, 0);
});

test('a publish encodes into the scratch and sends a copy in the same synchronous stretch', async () => {
  const { amqp, socket, channel } = wired();
  boundBufferPool(amqp);
  const pool = amqp.bufferPool as AMQPView[];
  const events: string[] = [];
  const pop = pool.pop.bind(pool);
  pool.pop = () => {
    events.push('pop');
    return pop();
  };
  const send = amqp.send.bind(amqp);
  const scratch = pop();
  let sentScratch = false;
  amqp.send = (bytes: Uint8Array) => {
    events.push('send');
    return send(bytes);
  };
  socket._write = (chunk: Buffer, _encoding, done) => {
    if (chunk.buffer === scratch?.buffer) sentScratch = true;
    socket.chunks.push(Buffer.from(chunk));
    done();
  };
  assert.equal(channel.connection, amqp, 'a channel knows its client (AmqpChannelLike.connection)');
  // Two publishes in one tick: the second reuses the scratch; the first's frames must stand.
  const first = channel.basicPublish('', 'queue-one', new Uint8Array(100), {}, false);
  assert.deepEqual(events, ['pop', 'send'], 'encoded and handed to send before publish returns');
  const second = channel.basicPublish('', 'queue-two', new Uint8Array(100), {}, false);
  await Promise.all([first, second]);
  assert.equal(sentScratch, false, 'the socket never holds the scratch itself');
  const written = Buffer.concat(socket.chunks).toString('latin1');
  assert.ok(
    written.indexOf('queue-one') >= 0 &&
      written.indexOf('queue-two') > written.indexOf('queue-one'),
  );
});

test('a body larger than the scratch is sent from its own buffer, whole', async () => {
  const { amqp, socket, channel } = wired();
  boundBufferPool(amqp);
  const body = new Uint8Array(300 * 1024).fill(7);
  await channel.basicPublish('', 'queue', body, {}, false);
  const written = Buffer.concat(socket.chunks);
  let sevens = 0;
  for (const byte of written) if (byte === 7) sevens++;
  assert.ok(sevens >= body.length, 'every body byte went out');
});

test("the client writes frames through its socket, so a corked tick's publishes go out in one write", async () => {
  const { amqp, socket, channel } = wired();
  batchWritesThisTick(amqp);
  assert.equal(socket.writableCorked, 1, 'AMQPClient#socket is corked');
  const published = [
    channel.basicPublish('', 'queue', new Uint8Array(10), {}, false),
    channel.basicPublish('', 'queue', new Uint8Array(10), {}, false),
    channel.basicPublish('', 'queue', new Uint8Array(10), {}, false),
  ];
  assert.deepEqual(socket.writes, [], 'nothing written while corked');
  await Promise.all(published);
  assert.equal(socket.writableCorked, 0, 'uncorked at the end of the tick');
  assert.deepEqual(socket.writes, [3], 'three publishes, one write');
});

test('without a socket (another transport) batchWritesThisTick runs the flush hook at once', () => {
  let flushed = 0;
  batchWritesThisTick({}, () => flushed++);
  assert.equal(flushed, 1);
});

test("atEndOfTick runs its task right before the tick's write, and what the task publishes joins it", async () => {
  const { amqp, socket, channel } = wired();
  const order: string[] = [];
  let published: Promise<unknown> | undefined;
  atEndOfTick(amqp, () => {
    order.push(`task, ${socket.writes.length} writes so far`);
    published = channel.basicPublish('', 'queue', new Uint8Array(10), {}, false);
  });
  // A publish made later in the same tick, in a microtask, goes out in the same write.
  queueMicrotask(() => {
    order.push('microtask');
    void channel.basicPublish('', 'queue', new Uint8Array(10), {}, false);
  });
  assert.equal(socket.writableCorked, 1, 'corked until the end of the tick');
  await new Promise((resolve) => setImmediate(resolve));
  await published;
  assert.deepEqual(order, ['microtask', 'task, 0 writes so far']);
  assert.deepEqual(socket.writes, [2], 'both publishes, one write');
  assert.equal(socket.writableCorked, 0);
});

test('a hook added by a hook runs in the same flush; a hook that throws is warned about and leaves the socket uncorked', async () => {
  const { amqp, socket } = wired();
  const ran: string[] = [];
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on('warning', onWarning);
  try {
    batchWritesThisTick(amqp, () => {
      ran.push('first');
      batchWritesThisTick(amqp, () => ran.push('added by the first'));
      throw new Error('a bug');
    });
    atEndOfTick(amqp, () => ran.push('second'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ran, ['first', 'second', 'added by the first']);
    assert.equal(socket.writableCorked, 0, 'uncorked although a hook threw');
    assert.equal(warnings.length, 1);
    // The next tick corks and flushes again.
    atEndOfTick(amqp, () => ran.push('next tick'));
    assert.equal(socket.writableCorked, 1);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(ran.at(-1), 'next tick');
    assert.equal(socket.writableCorked, 0);
  } finally {
    process.off('warning', onWarning);
  }
});

test('the end-of-tick hooks run even while something else holds the socket corked', async () => {
  const { amqp, socket } = wired();
  socket.cork(); // not ours: never uncorked here
  let ran = false;
  atEndOfTick(amqp, () => (ran = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(ran, true);
  assert.equal(socket.writableCorked, 1, 'only our own cork was taken off');
});

test('without a socket (another transport) atEndOfTick runs its task in a microtask', async () => {
  let ran = 0;
  atEndOfTick({}, () => ran++);
  assert.equal(ran, 0, 'not at once: the tick may still bring more');
  await Promise.resolve();
  assert.equal(ran, 1);
});
