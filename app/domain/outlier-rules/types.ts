/**
 * What every outlier rule produces. A rule module is pure: it receives a candidate (numbers the
 * detection job's SQL computed) and decides whether it is an outlier and how to say so.
 */
export const RULE_NAMES = [
  "out_of_range",
  "override_mismatch",
  "unexpected_route",
  "unregistered_type",
  "user_spike",
  "failure_spike",
] as const;

export type RuleName = (typeof RULE_NAMES)[number];

export interface Finding {
  rule: RuleName;
  /** Same finding, same key: re-runs update it instead of adding a second flag. */
  dedupeKey: string;
  actionType: string | null;
  route: string | null;
  userId: string | null;
  usageId: string | null;
  /** UTC calendar day (YYYY-MM-DD) for daily rules; the call's UTC day for per-call rules. */
  day: string;
  observed: number;
  expectedLow: number | null;
  expectedHigh: number | null;
  message: string;
  details: Record<string, number | string | boolean | null>;
  occurredAt: Date;
}

/** The UTC calendar day of an instant: daily rules bucket by UTC days. */
export function utcDay(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function fmt(n: number): string {
  return integer.format(n);
}

/** A count with its noun, singular for one: "1 call", "2,773 calls". */
export function count(n: number, noun: string): string {
  return `${integer.format(n)} ${n === 1 ? noun : `${noun}s`}`;
}

/** A ratio for a message, e.g. 2.4× or 0.08×; two significant digits are enough to read. */
export function times(ratio: number): string {
  return `${Number(ratio.toPrecision(2))}×`;
}

export function percent(ratio: number, digits = 1): string {
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** One call of token_usage as the per-call rules see it. */
export interface UsageCall {
  usageId: string;
  userId: string;
  actionType: string;
  route: string | null;
  tokens: number;
  createdAt: Date;
}

type Judgement = Pick<Finding, "observed" | "expectedLow" | "expectedHigh" | "message" | "details">;

/** A finding about one call: keyed by the call, so a call is flagged once per rule. */
export function callFinding(rule: RuleName, call: UsageCall, judgement: Judgement): Finding {
  return {
    rule,
    dedupeKey: `${rule}:${call.usageId}`,
    actionType: call.actionType,
    route: call.route,
    userId: call.userId,
    usageId: call.usageId,
    day: utcDay(call.createdAt),
    occurredAt: call.createdAt,
    ...judgement,
  };
}

/** A finding about a UTC day of calls, keyed by what it is about and the day. */
export function dailyFinding(
  rule: RuleName,
  about: { actionType?: string; route?: string; userId?: string; day: string; firstAt: Date },
  judgement: Judgement,
): Finding {
  const key = [about.actionType, about.route, about.userId].filter((part) => part !== undefined).join(":");
  return {
    rule,
    dedupeKey: `${rule}:${key}:${about.day}`,
    actionType: about.actionType ?? null,
    route: about.route ?? null,
    userId: about.userId ?? null,
    usageId: null,
    day: about.day,
    occurredAt: about.firstAt,
    ...judgement,
  };
}
