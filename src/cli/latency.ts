/**
 * Latency statistics, shared by `rabbit-rpc bench` and the benchmark in bench/ (which
 * imports this file; bench/ itself is not shipped). Percentiles are nearest-rank: the
 * p-th percentile of n values is the ceil(p/100 · n)-th smallest, always a measured value.
 */

/** 0-based index of the nearest-rank `p`-th percentile among `count` ascending values. */
function nearestRankIndex(count: number, p: number): number {
  const rank = Math.ceil((p / 100) * count);
  return Math.min(count - 1, Math.max(0, rank - 1));
}

/** Nearest-rank percentile of an ascending array; NaN when it is empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[nearestRankIndex(sorted.length, p)] ?? NaN;
}

/** Smallest latency the histogram tells apart: 1 µs. */
const LOWEST_MS = 0.001;
/** Relative width of a bucket: percentiles are within 1% of the exact nearest-rank value. */
const PRECISION = 0.01;
/** Largest latency it tells apart: the longest timeout a Node timer allows. */
const HIGHEST_MS = 2_147_483_647;
const LOG_STEP = Math.log1p(PRECISION);
const BUCKETS = Math.ceil(Math.log(HIGHEST_MS / LOWEST_MS) / LOG_STEP) + 1;

/**
 * Latencies in a fixed-size log-scale histogram (about 2,900 buckets, 23 KB), so a long
 * `bench` run takes no more memory than a short one and does not inflate the RSS it
 * reports. Bucket i holds (LOWEST·1.01^(i-1), LOWEST·1.01^i]; a percentile is its
 * bucket's upper bound, kept within the smallest and largest values recorded (which are
 * exact).
 */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #min = Infinity;
  #max = -Infinity;
  #sum = 0;

  /** Adds one latency, in milliseconds. */
  record(ms: number): void {
    const index =
      ms <= LOWEST_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / LOWEST_MS) / LOG_STEP));
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#count++;
    this.#sum += ms;
    if (ms < this.#min) this.#min = ms;
    if (ms > this.#max) this.#max = ms;
  }

  /** Latencies recorded. */
  get count(): number {
    return this.#count;
  }

  /** The smallest latency recorded, exact; NaN when none. */
  get min(): number {
    return this.#count === 0 ? NaN : this.#min;
  }

  /** The largest latency recorded, exact; NaN when none. */
  get max(): number {
    return this.#count === 0 ? NaN : this.#max;
  }

  /** The mean latency, exact; NaN when none. */
  get mean(): number {
    return this.#count === 0 ? NaN : this.#sum / this.#count;
  }

  /** The nearest-rank `p`-th percentile (0 < p ≤ 100) within 1%; NaN when nothing was recorded. */
  percentile(p: number): number {
    if (this.#count === 0) return NaN;
    const wanted = nearestRankIndex(this.#count, p);
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.#counts[index] ?? 0;
      if (seen > wanted) {
        // The last bucket also holds everything above HIGHEST_MS: only max bounds it.
        if (index === BUCKETS - 1) return this.#max;
        const upper = LOWEST_MS * Math.exp(index * LOG_STEP);
        return Math.min(this.#max, Math.max(this.#min, upper));
      }
    }
    return this.#max;
  }
}
