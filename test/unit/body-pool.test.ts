import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyPool, MIN_POOLED_BODY_BYTES } from '../../src/client/body-pool.js';

test('a large body is written as UTF-8 into a power-of-two buffer', () => {
  const pool = new BodyPool();
  const text = `"${'é'.repeat(3000)}"`; // 6,002 bytes in UTF-8
  const body = pool.take(text);
  assert.ok(body);
  assert.equal(Buffer.from(body.bytes).toString('utf8'), text);
  assert.equal(body.bytes.length, 6002);
  assert.equal(body.backing.length, 8192);
});

test('a buffer given back is reused by the next body of its size class', () => {
  const pool = new BodyPool();
  const first = pool.take('a'.repeat(20_000));
  assert.ok(first);
  pool.give(first);
  const second = pool.take('b'.repeat(30_000));
  assert.ok(second);
  assert.equal(second.backing, first.backing, 'the same 32 KiB buffer');
  assert.equal(Buffer.from(second.bytes).toString(), 'b'.repeat(30_000));
  const other = pool.take('c'.repeat(40_000));
  assert.notEqual(other?.backing, first.backing, 'a buffer in use is never handed out twice');
});

test('small and very large bodies are left to Buffer.from', () => {
  const pool = new BodyPool();
  assert.equal(pool.take('x'.repeat(MIN_POOLED_BODY_BYTES - 1)), undefined);
  assert.ok(pool.take('x'.repeat(MIN_POOLED_BODY_BYTES)));
  assert.equal(pool.take('x'.repeat(1024 * 1024 + 1)), undefined);
});

test('the pool keeps at most 16 MiB of idle buffers', () => {
  const pool = new BodyPool();
  const bodies = Array.from({ length: 20 }, () => pool.take('x'.repeat(1024 * 1024)));
  for (const body of bodies) if (body) pool.give(body);
  const reused = new Set<unknown>();
  for (let i = 0; i < 20; i++) {
    const body = pool.take('y'.repeat(1024 * 1024));
    if (bodies.some((given) => given?.backing === body?.backing)) reused.add(body?.backing);
  }
  assert.equal(reused.size, 16);
});
