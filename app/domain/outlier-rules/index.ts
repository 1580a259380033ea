/** The outlier rules: one module each, listed here for the job, the page and the docs. */
import { count, RULE_NAMES, type RuleName } from "./types";

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

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** The numbers of a flag in one short cell: what was seen against what was expected. */
export function formatFlagNumbers(rule: string, observed: number | null, low: number | null, high: number | null): string {
  if (observed === null) return "";
  const n = (v: number) => integer.format(v);
  switch (rule) {
    case "out_of_range":
      return low !== null && high !== null ? `${n(observed)} vs ${low === high ? n(low) : `${n(low)}–${n(high)}`}` : n(observed);
    case "override_mismatch":
      return low !== null ? `${n(observed)} vs ${n(low)}` : n(observed);
    case "unexpected_route":
    case "unregistered_type":
      return count(observed, "call");
    case "user_spike":
      return high !== null ? `${n(observed)} > ${n(high)}` : n(observed);
    case "failure_spike":
      return `${(observed * 100).toFixed(1)}% vs ${high === null ? "?" : `${(high * 100).toFixed(1)}%`}`;
    default:
      return n(observed);
  }
}
