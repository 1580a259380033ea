/**
 * Rule failure_spike: an action type's failure rate on one UTC day far above its own recent
 * rate.
 *
 * Baseline rate p0: the type's failures / calls over the previous `baselineDays` days, pulled
 * toward a prior of priorFailures / priorCalls (1 in 20 = 5%). The prior keeps p0 above zero
 * for a type that never failed (otherwise one failure is "infinitely" surprising) and keeps a
 * type with little history from firing on a handful of calls.
 *
 * A day fires when all hold:
 *  - calls >= minCalls                      (too few calls say nothing)
 *  - P(X >= failures) <= maxPValue for X ~ Binomial(calls, p0): the exact tail, not the normal
 *    approximation, because expected failures are often below 1 on quiet types and there the
 *    z-score overstates surprise (4 of 30 at p0 = 2.2% has z 4.2 but p = 0.004). With 13
 *    types × 365 days ≈ 5,000 tests a year, 1e-6 keeps chance flags near zero. z is reported.
 *  - rate >= multiple · p0 and rate − p0 >= minExcess           (a change worth a look, not
 *                                                                just a significant one on a
 *                                                                busy type)
 */
import { count, dailyFinding, fmt, percent, type Finding } from "./types";

export const RULE = "failure_spike" as const;

export const FAILURE_SPIKE = {
  baselineDays: 28,
  minCalls: 20,
  maxPValue: 1e-6,
  multiple: 2,
  minExcess: 0.05,
  priorFailures: 1,
  priorCalls: 20,
} as const;

export type FailureSpikeParams = { [K in keyof typeof FAILURE_SPIKE]: number };

export interface FailureSpikeCandidate {
  actionType: string;
  day: string;
  calls: number;
  failures: number;
  baselineCalls: number;
  baselineFailures: number;
  firstAt: Date;
}

export function baselineRate(c: Pick<FailureSpikeCandidate, "baselineCalls" | "baselineFailures">, params: FailureSpikeParams = FAILURE_SPIKE): number {
  return (c.baselineFailures + params.priorFailures) / (c.baselineCalls + params.priorCalls);
}

/**
 * P(X >= k) for X ~ Binomial(n, p), summed in log space away from the mode (terms shrink
 * geometrically there, so the loop stops early): upward from k when k is above the mean,
 * otherwise as 1 − P(X <= k − 1) summed downward.
 */
export function binomialUpperTail(n: number, k: number, p: number): number {
  if (k <= 0 || p >= 1) return 1;
  if (k > n || p <= 0) return 0;
  if (k > n * p) return Math.min(1, tailSum(n, k, p, +1));
  return Math.max(0, 1 - tailSum(n, k - 1, p, -1));
}

function logBinomialTerm(n: number, i: number, p: number): number {
  let logChoose = 0;
  for (let j = 0; j < i; j += 1) logChoose += Math.log((n - j) / (j + 1));
  return logChoose + i * Math.log(p) + (n - i) * Math.log1p(-p);
}

/** Sum of binomial terms from `from` stepping by `step` (+1 up to n, −1 down to 0). */
function tailSum(n: number, from: number, p: number, step: 1 | -1): number {
  const logOdds = Math.log(p) - Math.log1p(-p);
  let log = logBinomialTerm(n, from, p);
  let sum = 0;
  for (let i = from; i >= 0 && i <= n; i += step) {
    const term = Math.exp(log);
    sum += term;
    if (term < sum * 1e-17) break;
    log += step > 0 ? Math.log((n - i) / (i + 1)) + logOdds : Math.log(i / (n - i + 1)) - logOdds;
  }
  return sum;
}

export function evaluateFailureSpike(c: FailureSpikeCandidate, params: FailureSpikeParams = FAILURE_SPIKE): Finding | null {
  if (c.calls < params.minCalls) return null;
  const p0 = baselineRate(c, params);
  const rate = c.failures / c.calls;
  if (rate < params.multiple * p0 || rate - p0 < params.minExcess) return null;
  const pValue = binomialUpperTail(c.calls, c.failures, p0);
  if (pValue > params.maxPValue) return null;
  const z = (c.failures - c.calls * p0) / Math.sqrt(c.calls * p0 * (1 - p0));
  return dailyFinding(RULE, { actionType: c.actionType, day: c.day, firstAt: c.firstAt }, {
    observed: rate,
    expectedLow: null,
    expectedHigh: p0,
    message: `${c.actionType} failed ${fmt(c.failures)} of ${count(c.calls, "call")} on ${c.day} (UTC): ${percent(rate)} against ${percent(p0)} over the previous ${params.baselineDays} days (${fmt(c.baselineFailures)} of ${fmt(c.baselineCalls)}), z ${z.toFixed(1)}, p ${pValue.toExponential(1)}`,
    details: {
      calls: c.calls,
      failures: c.failures,
      rate,
      baselineRate: p0,
      baselineCalls: c.baselineCalls,
      baselineFailures: c.baselineFailures,
      z,
      pValue,
      minCalls: params.minCalls,
      maxPValue: params.maxPValue,
    },
  });
}
