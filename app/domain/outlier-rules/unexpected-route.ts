/**
 * Rule unexpected_route: a registered action type produced by a route the registry does not
 * list for it. One flag per type × route × UTC day (a misrouted endpoint produces thousands of
 * calls; one flag per call would bury every other finding). Rows without a route (the seed
 * app's older rows) cannot be judged and are skipped by the job; unregistered types are the
 * unregistered_type rule's.
 */
import { getActionType } from "../action-types";
import { count, dailyFinding, fmt, type Finding } from "./types";

export const RULE = "unexpected_route" as const;

export interface UnexpectedRouteCandidate {
  actionType: string;
  route: string;
  day: string;
  calls: number;
  tokens: number;
  /** Start of the first rollup bucket (UTC) of that day holding such calls. */
  firstAt: Date;
}

export function evaluateUnexpectedRoute(c: UnexpectedRouteCandidate): Finding | null {
  const definition = getActionType(c.actionType);
  if (!definition || definition.routes.includes(c.route)) return null;
  return dailyFinding(RULE, { actionType: c.actionType, route: c.route, day: c.day, firstAt: c.firstAt }, {
    observed: c.calls,
    expectedLow: null,
    expectedHigh: null,
    message: `${c.actionType} came from ${c.route}, which the registry does not list for it (expected ${definition.routes.join(" or ")}): ${count(c.calls, "call")}, ${fmt(c.tokens)} tokens on ${c.day} (UTC)`,
    details: { calls: c.calls, tokens: c.tokens, expectedRoutes: definition.routes.join(", ") },
  });
}
