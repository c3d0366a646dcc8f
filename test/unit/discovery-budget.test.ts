// What one discovery keeps of its answers (src/client/discovery.ts): identical method lists
// once, and no more than MAX_DISCOVERY_BYTES of distinct ones, whatever peers send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeReplies, groupByQueue, MAX_DISCOVERY_BYTES } from '../../src/client/discovery.js';
import type { InstanceDescription } from '../../src/protocol/describe.js';
import { describeInstance, ErrorCounts } from '../../src/server/describe.js';
import type { AmqpMessageLike } from '../../src/transport/types.js';

/** A describe answer of one instance whose contract's input schema carries `pad`. */
function answer(instance: string, pad: string): AmqpMessageLike {
  const body = describeInstance({
    queue: 'rpc.big',
    contract: {
      service: 'big',
      queue: 'rpc.big',
      methods: [
        {
          name: 'run',
          stream: false,
          idempotent: false,
          input: { type: 'object', description: pad },
          errors: [],
        },
      ],
    },
    instance,
    startedAt: 0,
    inFlight: 0,
    prefetch: 1,
    replied: 0,
    expired: 0,
    errors: new ErrorCounts(),
    batch: undefined,
  });
  return {
    body: new TextEncoder().encode(JSON.stringify(body)),
    properties: {},
    deliveryTag: 0,
  } as unknown as AmqpMessageLike;
}

test('answers with distinct large method lists are kept only up to the budget', () => {
  const instances: InstanceDescription[] = [];
  const replies = describeReplies(instances, 10_000);
  const large = 900 * 1024;
  for (let i = 0; i < 40; i++)
    replies.onMessage(answer(`amq.gen-${i}`, String(i).padEnd(large, 'y')), 'id', 'reply-to');
  const kept = Math.floor(MAX_DISCOVERY_BYTES / large);
  assert.ok(instances.length >= kept - 1 && instances.length <= kept, `${instances.length} kept`);
});

test('instances with the same methods share one copy, so a large fleet fits', () => {
  const instances: InstanceDescription[] = [];
  const replies = describeReplies(instances, 10_000);
  const pad = 'x'.repeat(100 * 1024);
  for (let i = 0; i < 1_000; i++) replies.onMessage(answer(`amq.gen-${i}`, pad), 'id', 'reply-to');
  assert.equal(instances.length, 1_000, 'every instance kept: 1,000 x 100 KiB would be 100 MB');
  assert.equal(instances[0]?.methods, instances[999]?.methods);
});

test('a queue is consistent when its instances describe the same methods, shared or not', () => {
  const read = (instance: string, pad: string): InstanceDescription[] => {
    const instances: InstanceDescription[] = [];
    describeReplies(instances, 10).onMessage(answer(instance, pad), 'id', 'reply-to');
    return instances;
  };
  const [a] = read('amq.gen-a', 'same');
  const [b] = read('amq.gen-b', 'same');
  const [c] = read('amq.gen-c', 'other');
  assert.ok(a && b && c);
  assert.notEqual(a.methods, b.methods, 'equal lists, not one shared object');
  assert.equal(groupByQueue([a, b])[0]?.consistent, true);
  assert.equal(groupByQueue([a, { ...a, instance: 'amq.gen-d' }])[0]?.consistent, true);
  assert.equal(groupByQueue([a, c])[0]?.consistent, false);
  assert.equal(
    groupByQueue([a, { ...a, instance: 'amq.gen-e', service: 'renamed' }])[0]?.consistent,
    false,
  );
});
