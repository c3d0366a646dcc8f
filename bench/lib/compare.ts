/**
 * The comparison of two rabbit-rpc source trees measured in the same run (`npm run bench --
 * --rpc-rev REV`): per repetition and case, the working tree's run divided by the other
 * tree's run, five metrics at a time; the summary is the median of those ratios. Pure
 * functions, tested in test/unit/bench-compare.test.ts.
 */
import { median, round } from './common.js';

/** The metrics compared, in table order. */
export const COMPARED = [
  'callsPerSec',
  'clientUsPerCall',
  'serverUsPerCall',
  'p99Ms',
  'maxRssMb',
] as const;
export type Compared = (typeof COMPARED)[number];
export type Metrics = Record<Compared, number>;

/** Column headings, with which way is better. */
const HEADINGS: Record<Compared, string> = {
  callsPerSec: 'calls/s (>1 faster)',
  clientUsPerCall: 'client CPU/call (<1 less)',
  serverUsPerCall: 'server CPU/call (<1 less)',
  p99Ms: 'p99 (<1 lower)',
  maxRssMb: 'client peak RSS (<1 smaller)',
};

/** `mine / theirs` for every metric; NaN where either side is missing, not finite or not positive. */
export function ratios(mine: Metrics, theirs: Metrics): Metrics {
  const out = {} as Metrics;
  for (const key of COMPARED) {
    const a = mine[key];
    const b = theirs[key];
    out[key] = Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > 0 ? round(a / b, 3) : NaN;
  }
  return out;
}

/** One repetition's pair of runs of one case: its ratios, and whether other load disturbed either run. */
export interface PairRatios {
  ratios: Metrics;
  disturbed: boolean;
}

/**
 * Median of each metric's per-repetition ratios, from the undisturbed pairs when there are
 * any (as the ×raw column): `pairs` is how many pairs the medians come from, `disturbed`
 * how many of those other load disturbed (0 unless no clean pair exists), `leftOut` how
 * many disturbed pairs were left out.
 */
export function medianRatios(pairs: readonly PairRatios[]): {
  ratios: Metrics;
  pairs: number;
  disturbed: number;
  leftOut: number;
} {
  const clean = pairs.filter((p) => !p.disturbed);
  const used = clean.length > 0 ? clean : pairs;
  const out = {} as Metrics;
  for (const key of COMPARED) out[key] = round(median(used.map((p) => p.ratios[key])), 3);
  return {
    ratios: out,
    pairs: used.length,
    disturbed: clean.length > 0 ? 0 : pairs.length,
    leftOut: clean.length > 0 ? pairs.length - clean.length : 0,
  };
}

/** One line of the comparison table. */
export interface ComparisonRow {
  /** The case's name (seq, c16, ...). */
  case: string;
  /** The working tree's implementation, e.g. rabbit-rpc. */
  impl: string;
  /** The other tree's, e.g. rabbit-rpc@1a2b3c4. */
  other: string;
  /** Pairs of runs the medians come from. */
  pairs: number;
  /** How many of those other load disturbed (only when no clean pair exists). */
  disturbed: number;
  /** Disturbed pairs left out because clean ones exist. */
  leftOut: number;
  ratios: Metrics;
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : '–');

/** The comparison as a Markdown table, with a line saying what the numbers are. */
export function renderComparison(rows: readonly ComparisonRow[], otherLabel: string): string {
  const out = [
    `Working tree / ${otherLabel}: median of per-repetition ratios (both trees measured in the same repetition and case); 1.00 = no change.\n`,
    `| case | implementation | ${COMPARED.map((k) => HEADINGS[k]).join(' | ')} | pairs |`,
    `|---|---|${COMPARED.map(() => '---:|').join('')}---:|`,
  ];
  for (const row of rows) {
    const notes = [
      ...(row.disturbed > 0 ? [`${row.disturbed} disturbed`] : []),
      ...(row.leftOut > 0 ? [`${row.leftOut} disturbed left out`] : []),
    ];
    const pairs = `${row.pairs}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
    out.push(
      `| ${row.case} | ${row.impl} vs ${row.other} | ${COMPARED.map((k) => fmt(row.ratios[k])).join(' | ')} | ${pairs} |`,
    );
  }
  return out.join('\n');
}
