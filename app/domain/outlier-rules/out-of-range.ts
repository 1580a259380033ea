/**
 * Rule out_of_range: one successful call whose tokens lie outside its type's expected range
 * (registry expectedRange), with how far: absolute tokens and relative to the bound crossed.
 *
 * Not checked: variable types (admin_grant, admin_deduct have no range), failed calls (their
 * token counts are partial by nature; failure_spike watches failures), and fixed-cost types
 * that have an override (override_mismatch compares them with the override in effect, which
 * may differ from the registry's default).
 */
import { ACTION_TYPES, classifyAgainstRange, formatExpectedRange, getActionType } from "../action-types";
import { isFixedCostType } from "./override-mismatch";
import { callFinding, fmt, percent, times, type Finding, type UsageCall } from "./types";

export const RULE = "out_of_range" as const;

export interface CheckedRange {
  actionType: string;
  min: number;
  max: number;
}

/** Which types the job checks, given the types that currently have an override row. */
export function rangesToCheck(overriddenTypes: ReadonlySet<string>): CheckedRange[] {
  return ACTION_TYPES.flatMap((t) => {
    if (t.expectedRange === null) return [];
    if (overriddenTypes.has(t.name) && isFixedCostType(t.name)) return [];
    return [{ actionType: t.name, min: t.expectedRange.min, max: t.expectedRange.max }];
  });
}

export type OutOfRangeCandidate = UsageCall;

export function evaluateOutOfRange(c: OutOfRangeCandidate): Finding | null {
  const range = getActionType(c.actionType)?.expectedRange ?? null;
  const { position, distance } = classifyAgainstRange(range, c.tokens);
  if (range === null || (position !== "below" && position !== "above")) return null;
  const bound = position === "above" ? range.max : range.min;
  const ratio = bound > 0 ? c.tokens / bound : null;
  const relative =
    ratio === null ? "" : position === "above" ? ` (${times(ratio)} the maximum)` : ` (${percent(ratio)} of the minimum)`;
  return callFinding(RULE, c, {
    observed: c.tokens,
    expectedLow: range.min,
    expectedHigh: range.max,
    message: `${c.actionType} call used ${fmt(c.tokens)} tokens, ${fmt(distance)} ${position} the expected ${formatExpectedRange(range)}${relative}`,
    details: { tokens: c.tokens, min: range.min, max: range.max, position, distance, ratioToBound: ratio },
  });
}
