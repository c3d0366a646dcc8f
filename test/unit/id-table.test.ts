import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { IdTable } from '../../src/client/id-table.js';

interface Item {
  readonly id: string;
  readonly n: number;
}

/** A small deterministic generator, so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32;
  };
}

test('behaves as a Map through growth, shrinking and deletes inside probe runs', () => {
  const next = random(7);
  const table = new IdTable<Item>();
  const model = new Map<string, Item>();
  // Short ids from a small alphabet collide often; the burst grows the table to thousands
  // of slots and the drain shrinks it again.
  const ids = Array.from({ length: 3000 }, (_, i) => `k${i % 997}-${Math.floor(i / 997)}`);
  for (let step = 0; step < 60_000; step++) {
    const id = ids[Math.floor(next() * ids.length)] as string;
    const growing = step < 20_000 || (step > 40_000 && step < 45_000);
    if (next() < (growing ? 0.7 : 0.25)) {
      const item = { id, n: step };
      table.set(item);
      model.set(id, item);
    } else {
      assert.equal(table.delete(id), model.delete(id), `delete ${id} at step ${step}`);
    }
    if (step % 97 === 0) {
      for (const probe of ids.slice(0, 300)) assert.equal(table.get(probe), model.get(probe));
    }
    assert.equal(table.size, model.size);
  }
  for (const id of ids) assert.equal(table.get(id), model.get(id), id);
  assert.deepEqual(
    table.values().sort((a, b) => a.n - b.n),
    [...model.values()].sort((a, b) => a.n - b.n),
  );
});

test('ids alike in the characters hashed (their last 8) share one probe run and are still told apart', () => {
  const table = new IdTable<Item>();
  const ids = Array.from({ length: 200 }, (_, i) => `${i}-${'f'.repeat(8)}`);
  ids.forEach((id, n) => table.set({ id, n }));
  assert.equal(table.size, 200);
  ids.forEach((id, n) => assert.equal(table.get(id)?.n, n));
  // Deleting inside the run moves the later entries back: every other one stays findable.
  for (let i = 0; i < ids.length; i += 2) assert.equal(table.delete(ids[i] as string), true);
  ids.forEach((id, n) => assert.equal(table.get(id)?.n, n % 2 === 0 ? undefined : n));
  assert.equal(table.get(`x-${'f'.repeat(8)}`), undefined);
});

test('setting an id again replaces its value and keeps the size', () => {
  const table = new IdTable<Item>();
  const id = randomUUID();
  table.set({ id, n: 1 });
  table.set({ id, n: 2 });
  assert.equal(table.size, 1);
  assert.equal(table.get(id)?.n, 2);
});

test('any string a peer sends is looked up safely and finds nothing', () => {
  const table = new IdTable<Item>();
  for (let i = 0; i < 100; i++) table.set({ id: randomUUID(), n: i });
  for (const id of ['', 'x'.repeat(255), '__proto__', 'constructor', '\u0000', '💥'.repeat(40)]) {
    assert.equal(table.get(id), undefined);
    assert.equal(table.delete(id), false);
  }
  assert.equal(table.size, 100);
});

test('values() is a copy: deleting while going through it misses nothing', () => {
  const table = new IdTable<Item>();
  for (let i = 0; i < 500; i++) table.set({ id: randomUUID(), n: i });
  let seen = 0;
  for (const item of table.values()) {
    assert.equal(table.delete(item.id), true);
    seen++;
  }
  assert.equal(seen, 500);
  assert.equal(table.size, 0);
});
