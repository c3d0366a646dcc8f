/**
 * rabbit-rpc through its public API only: `connect`, `serve` (prefetch from the case) and
 * `call` with the library's defaults. Imported from the project source (src/index.ts);
 * bench/run.ts bundles it with the worker before a run, so the numbers are for the working
 * tree as it is; with --rpc-rev / --rpc-src a second bundle points this import at another
 * tree's src/index.ts, measured beside it. Import nothing else from src/ here: that one
 * import is what is swapped.
 */
import { connect, type ConnectOptions, type ReplyMode } from '../../src/index.js';
import {
  closedLoop,
  handle,
  requestMaker,
  type BenchClient,
  type BenchServer,
  type WorkerParams,
} from '../lib/common.js';

const replyModeOf = (p: WorkerParams): ReplyMode =>
  p.impl === 'rabbit-rpc-direct' ? 'direct' : 'queue';

/** The options every rabbit-rpc worker connects with. */
export function connectOptions(p: WorkerParams): ConnectOptions {
  const options: ConnectOptions = { url: p.url, replyMode: replyModeOf(p) };
  // Batching without negotiation (the default negotiates with the servers, D36); for
  // one message per call, BENCH_RPC_OPTIONS='{"batch":false}' (below).
  if (p.impl === 'rabbit-rpc-batch') options.batch = true;
  // What publisher confirms cost: a refused request then fails at its deadline (D21).
  if (p.impl === 'rabbit-rpc-noconfirm') options.publisherConfirms = false;
  if (p.frameMax !== undefined) options.frameMax = p.frameMax;
  // To see what a feature costs: more connect options as JSON, for example
  // BENCH_RPC_OPTIONS='{"publisherConfirms":false}' (docs/benchmark.md).
  const extra = process.env['BENCH_RPC_OPTIONS'];
  if (extra) Object.assign(options, JSON.parse(extra) as Partial<ConnectOptions>);
  return options;
}

export async function startServer(p: WorkerParams): Promise<BenchServer> {
  const rpc = await connect(connectOptions(p));
  await rpc.serve(p.queue, (request) => handle(request), { prefetch: p.prefetch });
  return { close: () => rpc.close() };
}

export async function openClient(p: WorkerParams): Promise<BenchClient> {
  const rpc = await connect(connectOptions(p));
  const call = (request: unknown): Promise<unknown> => rpc.call(p.queue, request);
  const make = requestMaker(p.payload);
  return {
    runPhase: (n, base, lat, counts) => closedLoop(call, make, n, p.conc, base, lat, counts),
    unknownReplies: () => rpc.stats().unmatchedReplies,
    close: () => rpc.close(),
  };
}
