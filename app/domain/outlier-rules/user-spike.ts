/**
 * Rule user_spike: a user's tokens on one UTC day far above their own usual day.
 *
 * Baseline: the user's daily totals on the days they were active among the previous
 * `baselineDays` days (not the day itself). Inactive days are left out on purpose: most users
 * are occasional, and counting their idle days as zeros would make the median 0 and every
 * active day a "spike". Median and MAD (median absolute deviation, scaled by 1.4826 to match a
 * standard deviation on normal data) are not moved by the very outliers we look for, unlike
 * mean and standard deviation.
 *
 * A day fires only when all three hold:
 *  - tokens > median + k · 1.4826 · MAD   (far outside the user's usual spread)
 *  - tokens > multiple · median            (large in relative terms; this is what still guards
 *                                          when MAD = 0, i.e. a user who always uses the same)
 *  - tokens > floorTokens                  (large in absolute terms, so tiny users do not fire)
 *  - the day without its largest call still exceeds the threshold: one big call is not a
 *    spike in the user's behaviour (a single 300,000-token blueprint is normal use and is
 *    judged on its own by out_of_range); many calls above the usual are. Without this, the
 *    demo data's normal users raised ~400 flags in 60 days, each one large in-range call.
 * and the user has at least `minBaselineDays` active days in the baseline (a new user has no
 * "usual" yet).
 */
import { count, dailyFinding, fmt, times, type Finding } from "./types";

export const RULE = "user_spike" as const;

export const USER_SPIKE = {
  baselineDays: 28,
  minBaselineDays: 5,
  k: 5,
  multiple: 3,
  floorTokens: 100_000,
} as const;

export type UserSpikeParams = { [K in keyof typeof USER_SPIKE]: number };

/** Scales MAD to estimate the standard deviation of normally distributed data. */
export const MAD_SCALE = 1.4826;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function medianAbsoluteDeviation(values: readonly number[], center = median(values)): number {
  return median(values.map((v) => Math.abs(v - center)));
}

export interface UserSpikeCandidate {
  userId: string;
  day: string;
  tokens: number;
  calls: number;
  /** Tokens of the day's largest single call. */
  largestCall: number;
  /** Daily token totals of the user's active days in the baseline window. */
  baseline: readonly number[];
  firstAt: Date;
}

export function evaluateUserSpike(c: UserSpikeCandidate, params: UserSpikeParams = USER_SPIKE): Finding | null {
  if (c.baseline.length < params.minBaselineDays) return null;
  const med = median(c.baseline);
  const mad = medianAbsoluteDeviation(c.baseline, med);
  const spread = MAD_SCALE * mad;
  const threshold = Math.max(med + params.k * spread, params.multiple * med, params.floorTokens);
  const withoutLargest = c.tokens - c.largestCall;
  if (!(c.tokens > threshold) || !(withoutLargest > threshold)) return null;
  const robustZ = spread > 0 ? (c.tokens - med) / spread : null;
  const ratio = med > 0 ? c.tokens / med : null;
  const zText = robustZ === null ? "MAD 0" : `robust z ${robustZ.toFixed(1)}`;
  return dailyFinding(RULE, { userId: c.userId, day: c.day, firstAt: c.firstAt }, {
    observed: c.tokens,
    expectedLow: null,
    expectedHigh: Math.round(threshold),
    message: `user used ${fmt(c.tokens)} tokens in ${count(c.calls, "call")} on ${c.day} (UTC), ${ratio === null ? "against a median of 0" : `${times(ratio)} their median of ${fmt(med)}`} over ${c.baseline.length} active days of the previous ${params.baselineDays} (MAD ${fmt(mad)}, ${zText}; threshold ${fmt(threshold)}, ${fmt(withoutLargest)} without the largest call)`,
    details: {
      tokens: c.tokens,
      calls: c.calls,
      largestCall: c.largestCall,
      withoutLargestCall: withoutLargest,
      median: med,
      mad,
      robustZ,
      ratioToMedian: ratio,
      threshold: Math.round(threshold),
      baselineActiveDays: c.baseline.length,
      baselineDays: params.baselineDays,
      k: params.k,
      multiple: params.multiple,
      floorTokens: params.floorTokens,
    },
  });
}
