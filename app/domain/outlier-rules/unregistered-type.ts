/**
 * Rule unregistered_type: rows whose action type the registry does not know (an adopted
 * database may hold them, e.g. vibrational_analysis). One flag per type × UTC day with the
 * count, so the page shows how much is affected without one flag per row.
 */
import { ACTION_TYPE_NAMES, isRegisteredActionType } from "../action-types";
import { count, dailyFinding, fmt, type Finding } from "./types";

export const RULE = "unregistered_type" as const;

export interface UnregisteredTypeCandidate {
  actionType: string;
  day: string;
  calls: number;
  tokens: number;
  /** Start of the first rollup bucket (UTC) of that day holding such calls. */
  firstAt: Date;
}

export function evaluateUnregisteredType(c: UnregisteredTypeCandidate): Finding | null {
  if (isRegisteredActionType(c.actionType)) return null;
  return dailyFinding(RULE, { actionType: c.actionType, day: c.day, firstAt: c.firstAt }, {
    observed: c.calls,
    expectedLow: null,
    expectedHigh: null,
    message: `unregistered action type ${c.actionType}: ${count(c.calls, "call")}, ${fmt(c.tokens)} tokens on ${c.day} (UTC); the registry has ${ACTION_TYPE_NAMES.length} types`,
    details: { calls: c.calls, tokens: c.tokens },
  });
}
