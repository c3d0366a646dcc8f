/**
 * Waits for `work` at most `timeoutMs`; resolves `true` if it settled (either way) in time.
 * Close paths use it so that a broker that never answers (cancel-ok, close-ok) cannot make
 * `close()` hang.
 */
export async function settledWithin(work: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const settled = work.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([settled, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
