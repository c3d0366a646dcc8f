import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { MAX_TIMER_MS, setLongTimeout, setTimeoutAt } from '../../src/timers.js';

describe('setLongTimeout: delays past what one Node timer takes (issue 13, defect 7)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  test('30 days: not before, then once', () => {
    let calls = 0;
    const thirtyDaysMs = 30 * 24 * 3600 * 1000;
    setLongTimeout(() => calls++, thirtyDaysMs);
    mock.timers.tick(MAX_TIMER_MS);
    assert.equal(calls, 0, 'one Node timer later');
    mock.timers.tick(thirtyDaysMs - MAX_TIMER_MS - 1);
    assert.equal(calls, 0, '1 ms early');
    mock.timers.tick(1);
    assert.equal(calls, 1);
    mock.timers.tick(thirtyDaysMs);
    assert.equal(calls, 1);
  });

  test('a due date in the past fires at once; Infinity never; clear() stops it', () => {
    let past = 0;
    let never = 0;
    let cleared = 0;
    setTimeoutAt(() => past++, Date.now() - 5);
    setLongTimeout(() => never++, Infinity);
    const timer = setLongTimeout(() => cleared++, 3 * MAX_TIMER_MS);
    mock.timers.tick(0);
    assert.equal(past, 1);
    mock.timers.tick(2 * MAX_TIMER_MS);
    timer.clear();
    timer.clear();
    mock.timers.tick(2 * MAX_TIMER_MS);
    assert.equal(cleared, 0);
    assert.equal(never, 0);
  });
});
