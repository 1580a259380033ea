/** The outlier rules: one module each, listed here for the job, the page and the docs. */
import { RULE_NAMES, type RuleName } from "./types";

export { RULE_NAMES, type Finding, type RuleName } from "./types";
export { evaluateOutOfRange, rangesToCheck } from "./out-of-range";
export { evaluateOverrideMismatch, isFixedCostType } from "./override-mismatch";
export { evaluateUnexpectedRoute } from "./unexpected-route";
export { evaluateUnregisteredType } from "./unregistered-type";
export { evaluateUserSpike, USER_SPIKE } from "./user-spike";
export { evaluateFailureSpike, FAILURE_SPIKE } from "./failure-spike";

export const RULE_LABELS: Record<RuleName, string> = {
  out_of_range: "Out of expected range",
  override_mismatch: "Differs from override",
  unexpected_route: "Unexpected route",
  unregistered_type: "Unregistered type",
  user_spike: "User daily spike",
  failure_spike: "Failure-rate spike",
};

export function isRuleName(value: string): value is RuleName {
  return (RULE_NAMES as readonly string[]).includes(value);
}
