/**
 * Pure rules of the money views: the roll-forward identity, what a call is charged and what
 * the tokens consumed are worth, and the running balance of one user. SQL gives the sums
 * (app/features/money/*.server.ts); these functions only combine a handful of them.
 */
import { DateTime } from "luxon";
import { getActionType } from "~/domain/action-types";
import { eachDate } from "~/domain/period";

/** Average purchase price is computed in this currency only: provider costs are in US cents. */
export const PRICE_CURRENCY = "USD";

/** One roll-forward row (a balance owner, or TOTAL): the four flows are non-negative. */
export interface RollForwardFigures {
  opening_balance: number;
  purchased: number;
  granted: number;
  charged: number;
  deducted: number;
  expired: number;
  closing_balance: number;
}

/** opening + purchased + granted − charged − deducted − expired = closing (the Contract). */
export function rollForwardHolds(row: RollForwardFigures): boolean {
  return row.opening_balance + row.purchased + row.granted - row.charged - row.deducted - row.expired === row.closing_balance;
}

/**
 * Average price of one token in cents: money received for purchases over tokens purchased, over
 * all time, in one currency. Null when nothing was ever sold with a price.
 */
export function pricePerTokenCents(paidCents: number, purchasedTokens: number): number | null {
  return purchasedTokens > 0 && paidCents > 0 ? paidCents / purchasedTokens : null;
}

/**
 * The UTC month boundary nearest to `t` (first day of that month), and on which side of it `t`
 * lies: Σ of the ledger before `t` is the month totals before the boundary, plus (sign 1) the
 * entries in [boundary, t) or minus (sign −1) those in [t, boundary). A zone's month starts
 * within 14 hours of a UTC one, so those entries span at most 14 hours.
 */
export function nearestUtcMonth(t: Date): { month: string; instant: Date; sign: 1 | -1 | 0 } {
  const at = DateTime.fromJSDate(t, { zone: "UTC" });
  const down = at.startOf("month");
  const up = down.plus({ months: 1 });
  const boundary = at.diff(down).toMillis() <= up.diff(at).toMillis() ? down : up;
  const sign = t.getTime() > boundary.toMillis() ? 1 : t.getTime() < boundary.toMillis() ? -1 : 0;
  return { month: boundary.toISODate() as string, instant: boundary.toJSDate(), sign };
}

/** Usage of one (action type, model) in a range, from the rollups. */
export interface UsageCostFact {
  action_type: string;
  model: string;
  calls: number;
  failures: number;
  /** Tokens of the successful calls (all tokens less those of failed calls). */
  ok_tokens: number;
  cost_cents: number;
  /** The type's override (ai_action_token_overrides), if set. */
  override: number | null;
}

/**
 * Tokens a (type, model) group was charged under the charging rule: successful calls of an
 * `ai`-category type, at the override where one is set, else their tokens. Ledger-category and
 * unregistered types are not charged.
 */
export function chargedTokens(fact: UsageCostFact): number {
  if (getActionType(fact.action_type)?.category !== "ai") return 0;
  return fact.override !== null ? (fact.calls - fact.failures) * fact.override : fact.ok_tokens;
}

export interface MarginRow {
  key: string;
  calls: number;
  charged_tokens: number;
  /** Charged tokens at the average purchase price (null: no price known). */
  value_cents: number | null;
  cost_cents: number;
  margin_cents: number | null;
}

/** Margin per action type or per model: value of the charged tokens less the provider cost. */
export function marginBy(facts: readonly UsageCostFact[], by: "action_type" | "model", priceCents: number | null): MarginRow[] {
  const groups = new Map<string, { calls: number; charged: number; cost: number }>();
  for (const f of facts) {
    const key = f[by];
    const g = groups.get(key) ?? { calls: 0, charged: 0, cost: 0 };
    g.calls += f.calls;
    g.charged += chargedTokens(f);
    g.cost += f.cost_cents;
    groups.set(key, g);
  }
  return [...groups.entries()]
    .map(([key, g]) => {
      const value = priceCents === null ? null : round4(g.charged * priceCents);
      return { key, calls: g.calls, charged_tokens: g.charged, value_cents: value, cost_cents: round4(g.cost), margin_cents: value === null ? null : round4(value - g.cost) };
    })
    .sort((a, b) => b.charged_tokens - a.charged_tokens || b.cost_cents - a.cost_cents || a.key.localeCompare(b.key));
}

function round4(n: number): number {
  return Math.round(n * 10_000) / 10_000;
}

/** One local day of a ledger: the sums of each kind (signed, as stored). */
export interface LedgerDay {
  day: string;
  grant: number;
  purchase: number;
  usage: number;
  correction: number;
  deduct: number;
  expiry: number;
}

export interface BalanceDay {
  date: string;
  granted: number;
  purchased: number;
  /** Usage charges less corrections (a refund makes it negative). */
  charged: number;
  deducted: number;
  expired: number;
  balance: number;
}

/**
 * The balance at the end of every local day from..to, from the balance before `from` and the
 * day sums; days without entries carry the balance on.
 */
export function runningBalance(opening: number, days: readonly LedgerDay[], from: string, to: string): BalanceDay[] {
  const byDay = new Map(days.map((d) => [d.day, d]));
  let balance = opening;
  return eachDate(from, to).map((date) => {
    const d = byDay.get(date);
    if (!d) return { date, granted: 0, purchased: 0, charged: 0, deducted: 0, expired: 0, balance };
    balance += d.grant + d.purchase + d.usage + d.correction + d.deduct + d.expiry;
    return { date, granted: d.grant, purchased: d.purchase, charged: -(d.usage + d.correction), deducted: -d.deduct, expired: -d.expiry, balance };
  });
}
