/**
 * Activation ranges from calibration statistics. int8 has 256 levels per
 * tensor: a range wide enough for the rarest outlier makes every level
 * coarse, one too narrow clips. Three ways to choose, compared on the
 * accuracy they give in native/README.md ("Quantiser"):
 *
 * - minmax: the smallest and largest value seen (no clipping at all);
 * - percentile: drop a fraction `p` of the values on each side;
 * - mse: the range whose int8 grid has the least expected squared error over
 *   the values seen, counting rounding inside (step^2 / 12 a value) and
 *   clipping outside (the distance to the edge, squared).
 */

export const HISTOGRAM_BINS = 2048;

/** Running statistics of one tensor: min/max in a first pass, a histogram over [min, max] in a second. */
export class TensorStats {
  min = Infinity;
  max = -Infinity;
  count = 0;
  histogram: Float64Array | undefined;

  observeRange(values: Float32Array): void {
    let { min, max } = this;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    this.min = min;
    this.max = max;
  }

  /** The histogram's domain: [min, max] widened to hold 0 (every int8 range must). */
  get domain(): [number, number] {
    const lo = Math.min(this.min, 0);
    const hi = Math.max(this.max, 0);
    return hi > lo ? [lo, hi] : [lo, lo + 1e-6];
  }

  observeHistogram(values: Float32Array): void {
    const histogram = (this.histogram ??= new Float64Array(HISTOGRAM_BINS));
    const [lo, hi] = this.domain;
    const perBin = HISTOGRAM_BINS / (hi - lo);
    const last = HISTOGRAM_BINS - 1;
    for (let i = 0; i < values.length; i++) {
      const bin = Math.floor((values[i] - lo) * perBin);
      histogram[bin < 0 ? 0 : bin > last ? last : bin]++;
    }
    this.count += values.length;
  }
}

export type RangeMethod = { name: 'minmax' } | { name: 'percentile'; p: number } | { name: 'mse' };

export function describeMethod(method: RangeMethod): string {
  return method.name === 'percentile' ? `percentile (${method.p} of the values clipped on each side)` : method.name;
}

export function parseMethod(text: string): RangeMethod {
  if (text === 'minmax' || text === 'mse') return { name: text };
  const match = /^percentile(?::([0-9.e-]+))?$/.exec(text);
  if (match) {
    const p = match[1] === undefined ? 1e-4 : Number(match[1]);
    if (!(p >= 0 && p < 0.5)) throw new RangeError('a percentile clip is a fraction in [0, 0.5), e.g. percentile:1e-4');
    return { name: 'percentile', p };
  }
  throw new RangeError(`unknown range method "${text}": minmax, percentile[:p] or mse`);
}

/** Bin edges and running sums of the histogram: counts, and the first two moments of the bin centres. */
function prefixSums(stats: TensorStats): {
  edges: Float64Array;
  n: Float64Array;
  s1: Float64Array;
  s2: Float64Array;
  centre: (i: number) => number;
} {
  const histogram = stats.histogram!;
  const [lo, hi] = stats.domain;
  const width = (hi - lo) / HISTOGRAM_BINS;
  const centre = (i: number) => lo + (i + 0.5) * width;
  const edges = Float64Array.from({ length: HISTOGRAM_BINS + 1 }, (_, i) => lo + i * width);
  const n = new Float64Array(HISTOGRAM_BINS + 1);
  const s1 = new Float64Array(HISTOGRAM_BINS + 1);
  const s2 = new Float64Array(HISTOGRAM_BINS + 1);
  for (let i = 0; i < HISTOGRAM_BINS; i++) {
    const c = centre(i);
    n[i + 1] = n[i] + histogram[i];
    s1[i + 1] = s1[i] + histogram[i] * c;
    s2[i + 1] = s2[i] + histogram[i] * c * c;
  }
  return { edges, n, s1, s2, centre };
}

function percentileRange(stats: TensorStats, p: number): [number, number] {
  const { edges, n } = prefixSums(stats);
  const total = n[HISTOGRAM_BINS];
  const clip = p * total;
  // The edge below which `clip` values lie, interpolated inside its bin.
  const quantile = (target: number): number => {
    let i = 0;
    while (i < HISTOGRAM_BINS && n[i + 1] < target) i++;
    const inBin = n[i + 1] - n[i];
    const fraction = inBin > 0 ? (target - n[i]) / inBin : 0;
    return edges[i] + fraction * (edges[i + 1] - edges[i]);
  };
  const lo = clip > 0 ? quantile(clip) : stats.min;
  const hi = clip > 0 ? quantile(total - clip) : stats.max;
  return [Math.min(lo, 0), Math.max(hi, 0)];
}

function mseRange(stats: TensorStats): [number, number] {
  const { edges, n, s1, s2 } = prefixSums(stats);
  const total = n[HISTOGRAM_BINS];
  const [lo, hi] = stats.domain;
  const zeroBin = Math.min(HISTOGRAM_BINS, Math.max(0, Math.round((0 - lo) / ((hi - lo) / HISTOGRAM_BINS))));
  let best = { error: Infinity, a: lo, b: hi };
  // Candidate edges: every bin edge at or below 0 for the low end, at or
  // above 0 for the high end. With the prefix sums each candidate is O(1):
  // the clipping error below a is sum n (a - c)^2 = a^2 N - 2a S1 + S2.
  for (let i = 0; i <= zeroBin; i++) {
    const a = Math.min(edges[i], 0);
    const below = a * a * n[i] - 2 * a * s1[i] + s2[i];
    if (below >= best.error) continue;
    for (let j = Math.max(zeroBin, i + 1); j <= HISTOGRAM_BINS; j++) {
      const b = Math.max(edges[j], 0);
      const step = (b - a) / 255;
      const nAbove = total - n[j];
      const above = b * b * nAbove - 2 * b * (s1[HISTOGRAM_BINS] - s1[j]) + (s2[HISTOGRAM_BINS] - s2[j]);
      const error = below + above + ((n[j] - n[i]) * step * step) / 12;
      if (error < best.error) best = { error, a, b };
    }
  }
  return [best.a, best.b];
}

/** The range to quantise a tensor to, by `method`. */
export function chooseRange(stats: TensorStats, method: RangeMethod): [number, number] {
  if (!(stats.max >= stats.min)) throw new Error('no values were observed for this tensor');
  if (method.name === 'minmax' || !stats.histogram) return [Math.min(stats.min, 0), Math.max(stats.max, 0)];
  if (method.name === 'percentile') return percentileRange(stats, method.p);
  return mseRange(stats);
}
