import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AMQPClient } from '@cloudamqp/amqp-client';
import { AckBatcher } from '../../src/transport/ack-batch.js';
import type { AmqpChannelLike } from '../../src/transport/types.js';

/**
 * A channel that records acks and nacks, on an unconnected client whose socket is a stub
 * that can be corked: acks asked for in one tick are flushed together on the next.
 */
function recordingChannel(): { channel: AmqpChannelLike; sent: string[] } {
  const sent: string[] = [];
  const client = new AMQPClient('amqp://127.0.0.1');
  const socket = {
    writableCorked: 0,
    cork() {
      this.writableCorked++;
    },
    uncork() {
      this.writableCorked--;
    },
  };
  (client as unknown as { socket: unknown }).socket = socket;
  const channel = {
    closed: false,
    connection: client,
    basicAck(tag: number, multiple = false) {
      sent.push(multiple ? `ack up to ${tag}` : `ack ${tag}`);
      return Promise.resolve();
    },
    basicNack(tag: number) {
      sent.push(`nack ${tag}`);
      return Promise.resolve();
    },
  } as unknown as AmqpChannelLike;
  return { channel, sent };
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

test("a tick's acks go out as one multiple ack when nothing below them is unsettled", async () => {
  const { channel, sent } = recordingChannel();
  const acks = new AckBatcher(channel);
  for (const tag of [1, 2, 3]) acks.received(tag);
  acks.ack(2);
  acks.ack(1);
  acks.ack(3);
  assert.deepEqual(sent, [], 'nothing before the end of the tick');
  await nextTick();
  assert.deepEqual(sent, ['ack up to 3']);
});

test('acks go one by one while an earlier delivery is still being handled', async () => {
  const { channel, sent } = recordingChannel();
  const acks = new AckBatcher(channel);
  for (const tag of [1, 2, 3, 4]) acks.received(tag);
  acks.ack(3);
  acks.ack(4);
  await nextTick();
  assert.deepEqual(sent, ['ack 3', 'ack 4'], 'a multiple ack would also settle 1 and 2');
  acks.ack(1);
  acks.ack(2);
  await nextTick();
  assert.deepEqual(sent.slice(2), ['ack up to 2']);
});

test('the lowest unsettled delivery is found after earlier ones were settled', async () => {
  const { channel, sent } = recordingChannel();
  const acks = new AckBatcher(channel);
  for (const tag of [1, 2, 3, 4, 5, 6]) acks.received(tag);
  acks.ack(1);
  acks.reject(2);
  await nextTick();
  // 3 is now the lowest unsettled: 5 and 6 cannot be acked with multiple.
  acks.ack(5);
  acks.ack(6);
  await nextTick();
  acks.ack(3);
  acks.ack(4);
  await nextTick();
  assert.deepEqual(sent, ['nack 2', 'ack 1', 'ack 5', 'ack 6', 'ack up to 4']);
});

test('an ack for a delivery never received, or already settled, is ignored', async () => {
  const { channel, sent } = recordingChannel();
  const acks = new AckBatcher(channel);
  acks.received(1);
  acks.ack(1);
  acks.ack(1);
  acks.ack(7);
  await nextTick();
  assert.deepEqual(sent, ['ack 1']);
});

test('flush() writes the acks of this tick at once, so that a close right after keeps them', async () => {
  const { channel, sent } = recordingChannel();
  const acks = new AckBatcher(channel);
  for (const tag of [1, 2]) acks.received(tag);
  acks.ack(1);
  acks.ack(2);
  acks.flush();
  assert.deepEqual(sent, ['ack up to 2'], 'before the end of the tick');
  (channel as { closed: boolean }).closed = true; // what closing the channel does at once
  await nextTick();
  assert.deepEqual(sent, ['ack up to 2'], 'nothing twice');
});

test('counts unsettled deliveries and says when the last one is settled', () => {
  const { channel } = recordingChannel();
  let settled = 0;
  const acks = new AckBatcher(channel, () => settled++);
  for (const tag of [1, 2, 3]) acks.received(tag);
  assert.equal(acks.unsettled, 3);
  acks.ack(2);
  acks.reject(1);
  assert.equal(settled, 0);
  acks.ack(3);
  assert.equal(acks.unsettled, 0);
  assert.equal(settled, 1);
  acks.flush();
});
