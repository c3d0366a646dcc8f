import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DedupeCache, dedupeKey } from '../../src/server/dedupe.js';
import { resolveServeOptions, SERVE_DEFAULTS } from '../../src/options/serve.js';

/** A cache of strings whose size is their length, on a clock the test moves. */
function cacheOf(limits: { maxEntries?: number; maxBytes?: number; ttlMs?: number } = {}) {
  const clock = { now: 1_000 };
  const cache = new DedupeCache<string>(
    { maxEntries: 100, maxBytes: 1_000, ttlMs: 10_000, ...limits },
    (value) => value.length,
    () => clock.now,
  );
  /** Claims `key` as its first delivery and completes it with `value`. */
  const answer = (key: string, value: string, deadline?: number) => {
    assert.equal(cache.claim(key).state, 'first');
    cache.complete(key, value, cache.expiresAt(deadline));
  };
  return { cache, clock, answer };
}

describe('DedupeCache', () => {
  test('the first delivery runs; a later duplicate gets its answer', () => {
    const { cache, answer } = cacheOf();
    answer('a', 'reply-a');
    assert.deepEqual(cache.claim('a'), { state: 'done', value: 'reply-a' });
    assert.equal(cache.claim('b').state, 'first', 'another key is new');
    assert.equal(cache.size, 1);
    assert.equal(cache.running, 1);
  });

  test('duplicates of a running request wait for it and get the same answer', async () => {
    const { cache } = cacheOf();
    assert.equal(await cache.earlierAnswer('k'), undefined, 'the first owns the key');
    const duplicates = [cache.earlierAnswer('k'), cache.earlierAnswer('k')];
    assert.equal(cache.running, 1);
    cache.complete('k', 'done', cache.expiresAt(undefined));
    assert.deepEqual(await Promise.all(duplicates), ['done', 'done']);
    assert.equal(cache.running, 0);
    assert.equal(await cache.earlierAnswer('k'), 'done');
  });

  test('an abandoned first delivery hands the key to one waiting duplicate', async () => {
    const { cache } = cacheOf();
    assert.equal(cache.claim('k').state, 'first');
    const first = cache.earlierAnswer('k');
    const second = cache.earlierAnswer('k');
    cache.abandon('k');
    // The first waiter owns the key now and runs the request; the second waits for it.
    assert.equal(await first, undefined);
    assert.equal(cache.running, 1);
    cache.complete('k', 'rerun', cache.expiresAt(undefined));
    assert.equal(await second, 'rerun');
    assert.equal(cache.size, 1);
  });

  test('entries expire after ttlMs, or at their request deadline if sooner', () => {
    const { cache, clock, answer } = cacheOf({ ttlMs: 10_000 });
    answer('ttl', 'x');
    answer('deadline', 'y', clock.now + 2_000);
    clock.now += 1_999;
    assert.equal(cache.claim('deadline').state, 'done');
    clock.now += 1;
    assert.equal(cache.claim('deadline').state, 'first', 'gone at its deadline');
    assert.equal(cache.claim('ttl').state, 'done');
    clock.now += 8_000;
    assert.equal(cache.claim('ttl').state, 'first', 'gone after ttlMs');
  });

  test('expired entries are swept when new answers come in', () => {
    const { cache, clock, answer } = cacheOf({ ttlMs: 1_000 });
    for (let i = 0; i < 10; i++) answer(`old${i}`, 'xxxx');
    assert.equal(cache.bytes, 40);
    clock.now += 1_000;
    answer('new', 'yy');
    assert.equal(cache.size, 1);
    assert.equal(cache.bytes, 2);
  });

  test('over maxEntries, the least recently used entry goes first', () => {
    const { cache, answer } = cacheOf({ maxEntries: 3 });
    answer('a', '1');
    answer('b', '2');
    answer('c', '3');
    assert.equal(cache.claim('a').state, 'done'); // a is now the most recently used
    answer('d', '4');
    assert.equal(cache.size, 3);
    assert.equal(cache.claim('a').state, 'done');
    assert.equal(cache.claim('c').state, 'done');
    assert.equal(cache.claim('d').state, 'done');
    assert.equal(cache.claim('b').state, 'first', 'b was the least recently used');
  });

  test('over maxBytes, entries are evicted; an answer larger than maxBytes is not kept', async () => {
    const { cache, answer } = cacheOf({ maxBytes: 10 });
    answer('a', '1234');
    answer('b', '1234');
    answer('c', '1234');
    assert.equal(cache.bytes, 8);
    assert.equal(cache.claim('a').state, 'first', 'a was evicted for bytes');
    cache.abandon('a');
    // Too large to keep, but a waiting duplicate still gets it.
    assert.equal(cache.claim('big').state, 'first');
    const waiting = cache.earlierAnswer('big');
    cache.complete('big', 'x'.repeat(11), cache.expiresAt(undefined));
    assert.equal(await waiting, 'x'.repeat(11));
    assert.equal(cache.claim('big').state, 'first');
    assert.equal(cache.size, 2);
  });

  test('keys: message_id within the method; none without a message_id', () => {
    assert.equal(dedupeKey(undefined, 'add'), undefined);
    assert.equal(dedupeKey('', 'add'), undefined);
    assert.notEqual(dedupeKey('1', 'add'), dedupeKey('1', 'sub'));
    assert.notEqual(dedupeKey('1', undefined), dedupeKey('1', 'add'));
    // Length-prefixed: the method cannot run into the id.
    assert.notEqual(dedupeKey('b', 'a'), dedupeKey('ab', undefined));
    assert.notEqual(dedupeKey('1:a', ''), dedupeKey('a', '1:'));
  });

  test("the key holds the user: one user never gets another's answer", () => {
    assert.notEqual(dedupeKey('1', 'add', 'alice'), dedupeKey('1', 'add', 'bob'));
    assert.notEqual(dedupeKey('1', 'add', 'alice'), dedupeKey('1', 'add'));
    assert.notEqual(dedupeKey('1', 'add', ''), dedupeKey('1', 'add'));
    assert.notEqual(dedupeKey('1', 'add', '5:alice'), dedupeKey('1', 'add', '5'));
    assert.equal(dedupeKey('1', 'add', 'alice'), dedupeKey('1', 'add', 'alice'));
  });

  test('options: on by default with bounds; false turns it off; bad bounds are refused', () => {
    assert.deepEqual(resolveServeOptions().dedupe, SERVE_DEFAULTS.dedupe);
    assert.deepEqual(resolveServeOptions({ dedupe: { ttlMs: 5 } }).dedupe, {
      ...SERVE_DEFAULTS.dedupe,
      ttlMs: 5,
    });
    assert.equal(resolveServeOptions({ dedupe: false }).dedupe, false);
    for (const bad of [{ maxEntries: 0 }, { ttlMs: -1 }, { maxBytes: 1.5 }]) {
      assert.throws(() => resolveServeOptions({ dedupe: bad }), { code: 'INVALID_ARGUMENT' });
    }
    // @ts-expect-error run-time check for JavaScript callers
    assert.throws(() => resolveServeOptions({ dedupe: true }), { code: 'INVALID_ARGUMENT' });
  });
});
