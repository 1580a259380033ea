/**
 * Rule override_mismatch: a fixed-cost action type (one with a row in ai_action_token_overrides)
 * whose call charged a different number of tokens than the override in effect at that time.
 *
 * Character-priced types (audio_generation, unit "characters") are not fixed-cost: their
 * override is a price per character (1 token each), so a call's tokens equal its length and
 * are checked against the expected range instead.
 */
import { getActionType } from "../action-types";
import { callFinding, fmt, times, type Finding, type UsageCall } from "./types";

export const RULE = "override_mismatch" as const;

export function isFixedCostType(actionType: string): boolean {
  return getActionType(actionType)?.unit !== "characters";
}

export interface OverrideMismatchCandidate extends UsageCall {
  /** The override value in effect when the call was made (from override history). */
  override: number;
}

export function evaluateOverrideMismatch(c: OverrideMismatchCandidate): Finding | null {
  if (!isFixedCostType(c.actionType) || c.tokens === c.override) return null;
  const difference = c.tokens - c.override;
  const ratio = c.override > 0 ? c.tokens / c.override : null;
  const how = `${difference > 0 ? "+" : "−"}${fmt(Math.abs(difference))}${ratio === null ? "" : `, ${times(ratio)}`}`;
  return callFinding(RULE, c, {
    observed: c.tokens,
    expectedLow: c.override,
    expectedHigh: c.override,
    message: `${c.actionType} is fixed at ${fmt(c.override)} tokens by its override, but this call charged ${fmt(c.tokens)} (${how})`,
    details: { tokens: c.tokens, override: c.override, difference, ratio },
  });
}
