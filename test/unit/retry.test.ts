import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RpcError } from '../../src/errors.js';
import {
  isRetryable,
  RETRY_INITIAL_DELAY_MS,
  RETRY_MAX_DELAY_MS,
  RetryState,
} from '../../src/client/retry.js';

test('backoff: 50 ms doubling to 1 s, with equal jitter', () => {
  const retry = new RetryState(Number.MAX_SAFE_INTEGER);
  const ceilings: number[] = [];
  for (let attempt = 0; attempt < 8; attempt++) {
    retry.attempts = attempt;
    const high = retry.nextDelayMs(0, 1);
    const low = retry.nextDelayMs(0, 0);
    assert.ok(high !== undefined && low !== undefined);
    assert.equal(low, high / 2, 'at least half the ceiling');
    ceilings.push(high);
  }
  assert.deepEqual(ceilings, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(ceilings[0], RETRY_INITIAL_DELAY_MS);
  assert.equal(ceilings.at(-1), RETRY_MAX_DELAY_MS);
});

test('no attempt that would start at or past the deadline', () => {
  const retry = new RetryState(1_000);
  assert.equal(retry.nextDelayMs(900, 0), 25);
  assert.equal(retry.nextDelayMs(975, 0), undefined);
  assert.equal(retry.nextDelayMs(1_000, 0), undefined);
  assert.equal(retry.remainingMs(400), 600);
  assert.equal(retry.remainingMs(2_000), 1, 'an expiration is never 0 or negative');
});

test('a final DEADLINE_EXCEEDED carries the last UNAVAILABLE as its cause', () => {
  const retry = new RetryState(0);
  const timeout = new RpcError('DEADLINE_EXCEEDED', 'no reply');
  assert.equal(retry.finalError(timeout), timeout, 'unchanged before any failure');
  const unavailable = new RpcError('UNAVAILABLE', 'no queue');
  retry.lastError = unavailable;
  retry.attempts = 3;
  const final = retry.finalError(timeout);
  assert.equal(final.code, 'DEADLINE_EXCEEDED');
  assert.equal(final.cause, unavailable);
  const cancelled = new RpcError('CANCELLED', 'stop');
  assert.equal(retry.finalError(cancelled), cancelled, 'other codes are unchanged');
});

test('only UNAVAILABLE is retried', () => {
  assert.equal(isRetryable(new RpcError('UNAVAILABLE', 'x')), true);
  for (const code of [
    'DEADLINE_EXCEEDED',
    'CANCELLED',
    'INTERNAL',
    'RESOURCE_EXHAUSTED',
  ] as const) {
    assert.equal(isRetryable(new RpcError(code, 'x')), false, code);
  }
});
