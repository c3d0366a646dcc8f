import { svg } from './dom.js';

/** One point of a rate series: when (epoch ms) and calls per second. */
export interface RatePoint {
  readonly at: number;
  readonly rate: number;
}

const WIDTH = 480;
const HEIGHT = 90;
const PAD = 4;

/**
 * A small area chart of calls per second, hand-drawn in SVG: the last points of `series`
 * over their time span, the axis from 0 to the largest rate seen (at least 1).
 */
export function rateChart(series: readonly RatePoint[]): SVGElement {
  const chart = svg('svg', {
    class: 'chart',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': 'calls per second',
  });
  for (const fraction of [0.25, 0.5, 0.75]) {
    const y = PAD + (HEIGHT - 2 * PAD) * fraction;
    chart.append(svg('line', { x1: 0, x2: WIDTH, y1: y, y2: y, class: 'grid' }));
  }
  if (series.length < 2) return chart;
  const first = series[0]?.at ?? 0;
  const last = series[series.length - 1]?.at ?? first + 1;
  const span = Math.max(last - first, 1);
  const top = Math.max(1, ...series.map((point) => point.rate));
  const points = series.map((point) => {
    const x = ((point.at - first) / span) * WIDTH;
    const y = HEIGHT - PAD - (point.rate / top) * (HEIGHT - 2 * PAD);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  chart.append(
    svg('polygon', { points: `0,${HEIGHT} ${points.join(' ')} ${WIDTH},${HEIGHT}`, class: 'area' }),
    svg('polyline', { points: points.join(' '), class: 'line' }),
  );
  return chart;
}

/** The largest rate of a series, for the chart's scale label. */
export function peak(series: readonly RatePoint[]): number {
  return Math.max(0, ...series.map((point) => point.rate));
}
