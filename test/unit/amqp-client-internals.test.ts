// The internals of @cloudamqp/amqp-client that rabbit-rpc relies on, without a broker: its
// buffer pool (bounded by boundBufferPool, D12) and its socket (corked by
// batchWritesThisTick, D12). An upgrade that renames or reshapes either would silently undo
// the memory bound or the write batching; these tests fail instead. They use the library
// as the rest of rabbit-rpc does (a client, a channel on it, its publish path), with a
// stand-in socket that records the writes.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { AMQPChannel, AMQPClient } from '@cloudamqp/amqp-client';
import { AMQPView } from '@cloudamqp/amqp-client/amqp-view';
import { batchWritesThisTick, boundBufferPool } from '../../src/write-batch.js';

/** The library's internals as we use them (not in its typings). */
interface Internals {
  bufferPool: unknown;
  socket: Socket | undefined;
}

/** A socket that takes writes and remembers each physical write (one per uncork or write). */
class RecordingSocket extends Writable {
  readonly writes: number[] = [];
  override _write(_chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.writes.push(1);
    done();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, done: () => void): void {
    this.writes.push(chunks.length);
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

test('a client has a buffer pool: an array of AMQPView that boundBufferPool bounds', () => {
  const amqp = client();
  assert.ok(Array.isArray(amqp.bufferPool), 'AMQPClient#bufferPool is an array');
  boundBufferPool(amqp);
  const pool = amqp.bufferPool as AMQPView[];
  // Empty: a fresh 16 KiB buffer rather than one of frameMax (128 KiB by default).
  const fresh = pool.pop();
  assert.ok(fresh instanceof AMQPView);
  assert.equal(fresh.byteLength, 16 * 1024);
  // Full: at most 512 buffers kept, whatever is given back.
  for (let i = 0; i < 600; i++) pool.push(new AMQPView(new ArrayBuffer(8)));
  assert.equal(pool.length, 512);
});

test('a publish takes its frame buffer from the client pool and gives it back', async () => {
  const { amqp, channel } = wired();
  boundBufferPool(amqp);
  const pool = amqp.bufferPool as AMQPView[];
  const taken: AMQPView[] = [];
  const given: AMQPView[] = [];
  const pop = pool.pop.bind(pool);
  const push = pool.push.bind(pool);
  pool.pop = () => {
    const view = pop();
    if (view) taken.push(view);
    return view;
  };
  pool.push = (...views: AMQPView[]) => {
    given.push(...views);
    return push(...views);
  };
  assert.equal(channel.connection, amqp, 'a channel knows its client (AmqpChannelLike.connection)');
  await channel.basicPublish('', 'queue', new Uint8Array(100), { contentType: 'x' }, false);
  assert.equal(taken.length, 1, 'the publish popped a buffer from the pool');
  assert.equal(taken[0]?.byteLength, 16 * 1024, "and it was the bounded pool's fresh buffer");
  assert.deepEqual(given, taken, 'and pushed the same buffer back once written');
  assert.equal(pool.length, 1);
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
