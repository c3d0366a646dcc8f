import { isObservable, Subscription, type Observable } from 'rxjs';

/** What a Nest handler resolves to: an Observable (interceptors make one) or a plain value. */
export function asObservableOrValue(result: unknown): Observable<unknown> | { value: unknown } {
  return isObservable(result) ? result : { value: result };
}

/**
 * The last value an Observable emits before it completes (undefined when it emits none):
 * the reply of a unary call. Unsubscribes, and rejects with the signal's reason, when
 * `signal` aborts: the handler's work stops with the request.
 */
export function lastValue(source: Observable<unknown>, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    let last: unknown;
    const subscription = new Subscription();
    const onAbort = () => {
      subscription.unsubscribe();
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    subscription.add(
      source.subscribe({
        next: (value) => {
          last = value;
        },
        error: (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          // Whatever Nest's filters emitted (an object, a string): the caller maps it.
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(error);
        },
        complete: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(last);
        },
      }),
    );
  });
}

/**
 * An Observable as an AsyncIterable, for streaming replies: each value is an item. The
 * Observable has no backpressure, so values it emits faster than the stream sends them wait
 * in memory. Leaving the loop (the caller cancelled) unsubscribes.
 */
export function toAsyncIterable(source: Observable<unknown>): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]: () => {
      const buffered: unknown[] = [];
      let done = false;
      let failure: { error: unknown } | undefined;
      let wake: (() => void) | undefined;
      const notify = () => {
        wake?.();
        wake = undefined;
      };
      const subscription = source.subscribe({
        next: (value) => {
          buffered.push(value);
          notify();
        },
        error: (error: unknown) => {
          failure = { error };
          notify();
        },
        complete: () => {
          done = true;
          notify();
        },
      });
      return {
        next: async (): Promise<IteratorResult<unknown>> => {
          while (buffered.length === 0 && !done && !failure) {
            await new Promise<void>((resolve) => (wake = resolve));
          }
          if (buffered.length > 0) return { done: false, value: buffered.shift() };
          if (failure) throw failure.error as Error;
          return { done: true, value: undefined };
        },
        return: (): Promise<IteratorResult<unknown>> => {
          subscription.unsubscribe();
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}
