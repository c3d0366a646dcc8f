/**
 * The deadlines of a caller's pending calls, on one Node timer. A Node timer per call cost
 * about 1.3 µs of the 15–22 µs a sequential call spent in the client between a reply and the
 * next request (D41): a Timeout object with its async id, and, since the list of timers of
 * one duration empties after every sequential call, libuv's timer re-armed each time.
 *
 * Calls made with the same timeout come due in the order they were made (the clock here is
 * monotonic), so each timeout has a first-in, first-out lane, and adding or removing a call
 * is a few pointer writes. The one timer waits for the earliest head of a lane. Timeouts
 * beyond {@link MAX_LANES} distinct ones at a time (deadlines inherited from parent calls
 * differ call by call) get a Node timer each, as before.
 */
export class CallDeadlines {
  readonly #lanes = new Map<number, Lane>();
  /** Deadlines in lanes now: the timer keeps the process alive only while there are some. */
  #inLanes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When #timer fires (monotonic ms); Infinity when it is not armed. */
  #armedFor = Infinity;
  readonly #sweep = (): void => this.#expireDue();

  /** Calls `onExpired` once `timeoutMs` have passed, unless the returned deadline is cancelled. */
  add(timeoutMs: number, onExpired: () => void): Deadline {
    const dueAt = performance.now() + timeoutMs;
    const deadline = new Deadline(dueAt, onExpired);
    let lane = this.#lanes.get(timeoutMs);
    if (lane === undefined) {
      if (this.#lanes.size >= MAX_LANES && !this.#dropEmptyLane()) {
        armOwnTimer(deadline);
        return deadline;
      }
      lane = new Lane(timeoutMs);
      this.#lanes.set(timeoutMs, lane);
    }
    lane.append(deadline);
    if (this.#inLanes++ === 0) this.#timer?.ref();
    if (dueAt < this.#armedFor) this.#arm(dueAt);
    return deadline;
  }

  /** Cancels a deadline that has not expired; idempotent. */
  cancel(deadline: Deadline): void {
    if (deadline.timer !== undefined) {
      clearTimeout(deadline.timer);
      deadline.timer = undefined;
      return;
    }
    const lane = deadline.lane;
    if (lane === undefined) return;
    lane.remove(deadline);
    // An empty lane stays for the next call with its timeout (a sequential caller's lane
    // empties after every call); the sweep drops it. The timer stays armed too (re-arming
    // per call is the cost this saves): it fires, finds nothing due, and waits for the next
    // head, but no longer keeps the process alive.
    if (--this.#inLanes === 0) this.#timer?.unref();
  }

  /** Drops every deadline in a lane: none expires any more (those added later do). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
    for (const lane of this.#lanes.values()) {
      while (lane.head !== undefined) lane.remove(lane.head);
    }
    this.#lanes.clear();
    this.#inLanes = 0;
  }

  /** Frees the slot of a lane left empty (kept for reuse until the sweep); false if none is. */
  #dropEmptyLane(): boolean {
    for (const lane of this.#lanes.values()) {
      if (lane.head === undefined) return this.#lanes.delete(lane.timeoutMs);
    }
    return false;
  }

  #arm(dueAt: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = dueAt;
    // At least 1 ms: a timer never fires before its due time, checked in #expireDue.
    this.#timer = setTimeout(this.#sweep, Math.max(1, Math.ceil(dueAt - performance.now())));
  }

  #expireDue(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const lane of this.#lanes.values()) {
      let head = lane.head;
      while (head !== undefined && head.dueAt <= now) {
        this.cancel(head);
        head.onExpired();
        head = lane.head;
      }
      if (head === undefined) this.#lanes.delete(lane.timeoutMs);
      else if (head.dueAt < next) next = head.dueAt;
    }
    // onExpired may have added deadlines (and armed the timer) meanwhile.
    if (next < this.#armedFor) this.#arm(next);
  }
}

/** A call's deadline in {@link CallDeadlines}. */
export class Deadline {
  /** Its lane while it waits there. */
  lane: Lane | undefined;
  newer: Deadline | undefined;
  older: Deadline | undefined;
  /** Its own Node timer, when every lane was taken. */
  timer: NodeJS.Timeout | undefined;
  constructor(
    readonly dueAt: number,
    readonly onExpired: () => void,
  ) {}
}

/** A deadline outside the lanes: a Node timer of its own, which never fires early either. */
function armOwnTimer(deadline: Deadline): void {
  deadline.timer = setTimeout(
    () => {
      if (performance.now() < deadline.dueAt) armOwnTimer(deadline);
      else {
        deadline.timer = undefined;
        deadline.onExpired();
      }
    },
    Math.max(1, Math.ceil(deadline.dueAt - performance.now())),
  );
}

/** The deadlines of one timeout, oldest (due first) at the head. */
class Lane {
  head: Deadline | undefined;
  tail: Deadline | undefined;
  constructor(readonly timeoutMs: number) {}

  append(deadline: Deadline): void {
    deadline.lane = this;
    deadline.older = this.tail;
    if (this.tail) this.tail.newer = deadline;
    else this.head = deadline;
    this.tail = deadline;
  }

  remove(deadline: Deadline): void {
    const { older, newer } = deadline;
    if (older) older.newer = newer;
    else this.head = newer;
    if (newer) newer.older = older;
    else this.tail = older;
    deadline.lane = deadline.older = deadline.newer = undefined;
  }
}

/**
 * Distinct timeouts with a lane at a time; a caller's usually has one or two (its default,
 * a method's own). Bounded so that finding the earliest head stays cheap.
 */
export const MAX_LANES = 8;
