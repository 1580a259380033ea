/**
 * Log-scaled token histograms. Rollups store, per bucket and action type, how many calls
 * fell in each bin; percentiles are then read from a few hundred bin counts instead of
 * millions of rows. Bins are quarter-octaves (each about 19% wide), so a percentile read
 * from them is within ~19% of the true value; max is stored exactly beside them.
 *
 * Bin 0 holds calls of 0 tokens or fewer; bin b ≥ 1 holds [2^((b-1)/4), 2^(b/4)).
 * The SQL twin of binOf is `tokenBinSql` in app/models/rollup.server.ts.
 */
export const BINS_PER_OCTAVE = 4;

export function binOf(tokens: number): number {
  if (tokens <= 0) return 0;
  return Math.floor((Math.log(tokens) * BINS_PER_OCTAVE) / Math.LN2) + 1;
}

export function binBounds(bin: number): { low: number; high: number } {
  if (bin <= 0) return { low: 0, high: 0 };
  return { low: 2 ** ((bin - 1) / BINS_PER_OCTAVE), high: 2 ** (bin / BINS_PER_OCTAVE) };
}

export interface BinCount {
  bin: number;
  calls: number;
}

/**
 * The q-quantile (0 < q ≤ 1) estimated from bin counts: the geometric middle of the bin that
 * holds it, kept within the exact max when known. Null when there are no calls.
 */
export function quantileFromBins(bins: readonly BinCount[], q: number, max?: number | null): number | null {
  const sorted = bins.filter((b) => b.calls > 0).sort((a, b) => a.bin - b.bin);
  const total = sorted.reduce((sum, b) => sum + b.calls, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const b of sorted) {
    seen += b.calls;
    if (seen >= rank) {
      const { low, high } = binBounds(b.bin);
      const estimate = b.bin === 0 ? 0 : Math.round(Math.sqrt(low * high));
      return max !== undefined && max !== null ? Math.min(estimate, max) : estimate;
    }
  }
  return null;
}

/** Bins as chart points: a readable token label per bin and its call count. */
export function histogramPoints(bins: readonly BinCount[]): { bin: number; low: number; high: number; calls: number }[] {
  return [...bins]
    .filter((b) => b.calls > 0)
    .sort((a, b) => a.bin - b.bin)
    .map((b) => {
      const { low, high } = binBounds(b.bin);
      return { bin: b.bin, low: Math.ceil(low), high: Math.ceil(high) - 1, calls: b.calls };
    });
}
