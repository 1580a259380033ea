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
 *  - z = (failures − calls·p0) / sqrt(calls·p0·(1 − p0)) >= z   (binomial surprise)
 *  - rate >= multiple · p0 and rate − p0 >= minExcess           (a change worth a look, not
 *                                                                just a significant one on a
 *                                                                busy type)
 */
import { fmt, percent, type Finding } from "./types";

export const RULE = "failure_spike" as const;

export const FAILURE_SPIKE = {
  baselineDays: 28,
  minCalls: 20,
  z: 4,
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

export function evaluateFailureSpike(c: FailureSpikeCandidate, params: FailureSpikeParams = FAILURE_SPIKE): Finding | null {
  if (c.calls < params.minCalls) return null;
  const p0 = baselineRate(c, params);
  const rate = c.failures / c.calls;
  const z = (c.failures - c.calls * p0) / Math.sqrt(c.calls * p0 * (1 - p0));
  if (z < params.z || rate < params.multiple * p0 || rate - p0 < params.minExcess) return null;
  return {
    rule: RULE,
    dedupeKey: `${RULE}:${c.actionType}:${c.day}`,
    actionType: c.actionType,
    route: null,
    userId: null,
    usageId: null,
    day: c.day,
    observed: rate,
    expectedLow: null,
    expectedHigh: p0,
    message: `${c.actionType} failed ${fmt(c.failures)} of ${fmt(c.calls)} calls on ${c.day} (UTC): ${percent(rate)} against ${percent(p0)} over the previous ${params.baselineDays} days (${fmt(c.baselineFailures)} of ${fmt(c.baselineCalls)}), z ${z.toFixed(1)}`,
    details: {
      calls: c.calls,
      failures: c.failures,
      rate,
      baselineRate: p0,
      baselineCalls: c.baselineCalls,
      baselineFailures: c.baselineFailures,
      z,
      minCalls: params.minCalls,
      zThreshold: params.z,
    },
    occurredAt: c.firstAt,
  };
}
