/**
 * Memory of a burst: `node --import tsx bench/burst-memory.ts [--calls N] [--url URL]`.
 * One process, one client connection and one server connection. The client issues N small
 * calls in one synchronous loop (one tick) and reports how much memory they hold right
 * after the loop, before the tick's socket write goes out (RSS, heap, external and
 * ArrayBuffer memory, after a GC taken before the loop), then the peak while they are in
 * flight (sampled every 5 ms). Prints one JSON line. No assertions: it reports what it sees.
 * Needs `--expose-gc` for the baseline GC (added by the re-exec below).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect } from '../src/index.js';

if (typeof globalThis.gc !== 'function') {
  // Re-run with --expose-gc: the baseline must not include garbage from connecting.
  execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(0);
}

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
}

const calls = Number(flag('calls', '20000'));
const url = flag('url', process.env['AMQP_URL'] ?? 'amqp://guest:guest@localhost:5672');
const MB = 1024 * 1024;

const queue = `bench.burst.${randomUUID()}`;
const serverConnection = await connect({ url, reconnect: false });
const clientConnection = await connect({ url, reconnect: false });
// autoDelete: the broker deletes the queue when the server's consumer goes.
await serverConnection.serve(queue, (request: unknown) => request, {
  prefetch: 100,
  autoDelete: true,
});
// One call first: channels and the reply queue exist before the burst.
await clientConnection.call(queue, 0);

function memory(): { rss: number; heap: number; external: number; arrayBuffers: number } {
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return {
    rss: rss / MB,
    heap: heapUsed / MB,
    external: external / MB,
    arrayBuffers: arrayBuffers / MB,
  };
}

globalThis.gc();
const before = memory();
const payload = { id: 1, name: 'a small request', tags: ['x', 'y'] };
const pending: Array<Promise<unknown>> = [];
for (let i = 0; i < calls; i++)
  pending.push(clientConnection.call(queue, payload, { timeoutMs: 120_000 }));
// Still in the tick of the loop: nothing has been written to the socket yet.
const afterLoop = memory();

let peak = afterLoop;
const sampler = setInterval(() => {
  const now = memory();
  if (now.rss > peak.rss) peak = now;
}, 5);
const started = Date.now();
const outcomes = await Promise.allSettled(pending);
const elapsedMs = Date.now() - started;
clearInterval(sampler);
const failed = outcomes.filter((outcome) => outcome.status === 'rejected').length;

await serverConnection.close();
await clientConnection.close();

const round = (value: number): number => Math.round(value * 10) / 10;
const delta = (a: number, b: number): number => round(a - b);
console.log(
  JSON.stringify({
    calls,
    failed,
    elapsedMs,
    heldAfterLoopMB: {
      rss: delta(afterLoop.rss, before.rss),
      heap: delta(afterLoop.heap, before.heap),
      external: delta(afterLoop.external, before.external),
      arrayBuffers: delta(afterLoop.arrayBuffers, before.arrayBuffers),
    },
    perCallKiB: round(((afterLoop.rss - before.rss) * 1024) / calls),
    peakInFlightMB: {
      rss: delta(peak.rss, before.rss),
      external: delta(peak.external, before.external),
    },
  }),
);
