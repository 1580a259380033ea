/**
 * The Billing page's figures for a range of local days: money received, token flows, the
 * liability over time, provider cost and margin, top spenders and overdrawn balances. Token
 * figures are GROUP BYs over the ledger (far smaller than usage); usage and its provider cost
 * come from the usage rollups plus the queue tail (usageFacts), never from every usage row.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import type { DateRange } from "~/domain/period";
import { usageFacts } from "~/models/rollup.server";
import { ledgerCumulativeSql } from "./roll-forward.server";
import { marginBy, PRICE_CURRENCY, pricePerTokenCents, runningBalance, type LedgerDay, type MarginRow, type UsageCostFact } from "./rules";

export const TOP_SPENDERS = 10;
export const OVERDRAWN_SHOWN = 20;

export interface MoneyByCurrency {
  currency: string;
  purchases: number;
  paid_cents: number;
  tokens: number;
}

export interface TokenFlows {
  sold: number;
  granted: number;
  charged: number;
  deducted: number;
  expired: number;
}

export interface LiabilityDay {
  date: string;
  outstanding: number;
  change: number;
}

export interface TopSpender {
  user_id: string;
  email: string | null;
  charged: number;
  value_cents: number | null;
  paid_cents: number;
}

export interface OverdrawnUser {
  user_id: string;
  email: string | null;
  balance: number;
  since: Date | null;
}

export interface BillingOverview {
  money: MoneyByCurrency[];
  flows: TokenFlows;
  liability: LiabilityDay[];
  /** Cents per token (PRICE_CURRENCY purchases over all time), null when none had a price. */
  pricePerToken: number | null;
  priceBasis: { paid_cents: number; tokens: number };
  byType: MarginRow[];
  byModel: MarginRow[];
  totalCostCents: number;
  topSpenders: TopSpender[];
  overdrawn: OverdrawnUser[];
  overdrawnCount: number;
}

export async function moneyReceived(db: Kysely<Database>, range: DateRange): Promise<MoneyByCurrency[]> {
  const result = await sql<MoneyByCurrency>`
    SELECT COALESCE(upper(currency), ${PRICE_CURRENCY}) AS currency, count(*)::bigint AS purchases,
           COALESCE(sum(amount_paid_cents), 0)::bigint AS paid_cents, sum(amount)::bigint AS tokens
    FROM ledger_entries
    WHERE kind = 'purchase' AND created_at >= ${range.start} AND created_at < ${range.end}
    GROUP BY 1 ORDER BY 3 DESC, 1`.execute(db);
  return result.rows;
}

export async function tokenFlows(db: Kysely<Database>, range: DateRange): Promise<TokenFlows> {
  const result = await sql<TokenFlows>`
    SELECT COALESCE(sum(amount) FILTER (WHERE kind = 'purchase'), 0)::bigint AS sold,
           COALESCE(sum(amount) FILTER (WHERE kind = 'grant'), 0)::bigint AS granted,
           (-COALESCE(sum(amount) FILTER (WHERE kind IN ('usage', 'correction')), 0))::bigint AS charged,
           (-COALESCE(sum(amount) FILTER (WHERE kind = 'deduct'), 0))::bigint AS deducted,
           (-COALESCE(sum(amount) FILTER (WHERE kind = 'expiry'), 0))::bigint AS expired
    FROM ledger_entries
    WHERE created_at >= ${range.start} AND created_at < ${range.end}`.execute(db);
  return result.rows[0] as TokenFlows;
}

/**
 * Σ of every balance (overdrafts included, as negatives) at the end of each local day: the
 * sum before the range, then each day's net change, grouped in SQL by local date.
 */
export async function liabilityPerDay(db: Kysely<Database>, range: DateRange): Promise<LiabilityDay[]> {
  const [opening, days] = await Promise.all([
    sql<{ total: number }>`SELECT COALESCE(sum(at_start), 0)::bigint AS total FROM (${ledgerCumulativeSql(range.start, range.start)}) c`.execute(db),
    ledgerDays(db, range, null),
  ]);
  return runningBalance(opening.rows[0]?.total ?? 0, days, range.from, range.to).map((d, i, all) => ({
    date: d.date,
    outstanding: d.balance,
    change: d.balance - (i === 0 ? (opening.rows[0]?.total ?? 0) : (all[i - 1]?.balance ?? 0)),
  }));
}

/** Ledger sums per local day and kind, of one owner or (null) of everyone. */
export async function ledgerDays(db: Kysely<Database>, range: DateRange, userId: string | null): Promise<LedgerDay[]> {
  const owner = userId === null ? sql`true` : sql`user_id = ${userId}`;
  const result = await sql<LedgerDay>`
    SELECT to_char(d.day, 'YYYY-MM-DD') AS day, d."grant", d.purchase, d.usage, d.correction, d.deduct, d.expiry
    FROM (
      SELECT (created_at AT TIME ZONE ${range.tz})::date AS day,
             COALESCE(sum(amount) FILTER (WHERE kind = 'grant'), 0)::bigint AS "grant",
             COALESCE(sum(amount) FILTER (WHERE kind = 'purchase'), 0)::bigint AS purchase,
             COALESCE(sum(amount) FILTER (WHERE kind = 'usage'), 0)::bigint AS usage,
             COALESCE(sum(amount) FILTER (WHERE kind = 'correction'), 0)::bigint AS correction,
             COALESCE(sum(amount) FILTER (WHERE kind = 'deduct'), 0)::bigint AS deduct,
             COALESCE(sum(amount) FILTER (WHERE kind = 'expiry'), 0)::bigint AS expiry
      FROM ledger_entries
      WHERE ${owner} AND created_at >= ${range.start} AND created_at < ${range.end}
      GROUP BY 1
    ) d
    ORDER BY d.day`.execute(db);
  return result.rows;
}

/** Money and tokens of every priced purchase in PRICE_CURRENCY, over all time. */
export async function priceBasis(db: Kysely<Database>): Promise<{ paid_cents: number; tokens: number }> {
  const result = await sql<{ paid_cents: number; tokens: number }>`
    SELECT COALESCE(sum(amount_paid_cents), 0)::bigint AS paid_cents, COALESCE(sum(amount), 0)::bigint AS tokens
    FROM ledger_entries
    WHERE kind = 'purchase' AND amount_paid_cents > 0 AND COALESCE(upper(currency), ${PRICE_CURRENCY}) = ${PRICE_CURRENCY}`.execute(db);
  return result.rows[0] ?? { paid_cents: 0, tokens: 0 };
}

/**
 * Calls, successful tokens and provider cost per (action type, model) in the range, from the
 * rollups and the queue tail. The rollups keep failed calls' tokens with the rest, so those are
 * subtracted from the failed rows themselves (partial index, migration 0013), as the override
 * preview does. Provider cost is every call's, failed ones included: the provider bills them.
 */
export async function usageCostFacts(db: Kysely<Database>, range: DateRange): Promise<UsageCostFact[]> {
  const result = await sql<UsageCostFact>`
    WITH facts AS (
      SELECT action_type, model, sum(calls)::bigint AS calls, sum(failures)::bigint AS failures,
             sum(tokens)::bigint AS tokens, COALESCE(sum(cost_cents), 0)::float8 AS cost_cents
      FROM (${usageFacts(range)}) f
      GROUP BY action_type, model
    ), failed AS (
      SELECT action_type, model_used AS model, sum(tokens_used)::bigint AS tokens
      FROM token_usage
      WHERE NOT success AND created_at >= ${range.start} AND created_at < ${range.end}
      GROUP BY 1, 2
    )
    SELECT f.action_type, f.model, f.calls, f.failures, (f.tokens - COALESCE(x.tokens, 0))::bigint AS ok_tokens,
           f.cost_cents, o.token_value AS override
    FROM facts f
    LEFT JOIN failed x ON x.action_type = f.action_type AND x.model = f.model
    LEFT JOIN ai_action_token_overrides o ON o.action_type = f.action_type
    WHERE f.calls <> 0
    ORDER BY f.action_type, f.model`.execute(db);
  return result.rows;
}

/** Balances charged the most in the range (usage less corrections), with what they paid in it in PRICE_CURRENCY. */
export async function topSpenders(db: Kysely<Database>, range: DateRange, priceCents: number | null, limit = TOP_SPENDERS): Promise<TopSpender[]> {
  const result = await sql<Omit<TopSpender, "value_cents">>`
    SELECT s.user_id, e.email, s.charged, s.paid_cents
    FROM (
      SELECT user_id, (-COALESCE(sum(amount) FILTER (WHERE kind IN ('usage', 'correction')), 0))::bigint AS charged,
             COALESCE(sum(amount_paid_cents) FILTER (WHERE kind = 'purchase' AND COALESCE(upper(currency), ${PRICE_CURRENCY}) = ${PRICE_CURRENCY}), 0)::bigint AS paid_cents
      FROM ledger_entries
      WHERE created_at >= ${range.start} AND created_at < ${range.end} AND kind IN ('usage', 'correction', 'purchase')
      GROUP BY user_id
    ) s
    LEFT JOIN app_users e ON e.user_id = s.user_id
    WHERE s.charged > 0
    ORDER BY s.charged DESC, s.user_id
    LIMIT ${limit}`.execute(db);
  return result.rows.map((r) => ({ ...r, value_cents: priceCents === null ? null : Math.round(r.charged * priceCents * 100) / 100 }));
}

/**
 * Balances below zero now, most negative first, each with the start of its current overdraft:
 * the first entry after the last one that left the balance at zero or above.
 */
export async function overdrawnUsers(db: Kysely<Database>, limit = OVERDRAWN_SHOWN, userId?: string): Promise<{ users: OverdrawnUser[]; count: number }> {
  const only = userId === undefined ? sql`true` : sql`b.user_id = ${userId}`;
  const [rows, count] = await Promise.all([
    sql<OverdrawnUser>`
      SELECT b.user_id, e.email, b.balance,
             (SELECT min(l.created_at) FROM ledger_entries l
              WHERE l.user_id = b.user_id
                AND l.id > COALESCE((SELECT max(p.id) FROM ledger_entries p WHERE p.user_id = b.user_id AND p.balance_after >= 0), 0)) AS since
      FROM token_balances b
      LEFT JOIN app_users e ON e.user_id = b.user_id
      WHERE b.balance < 0 AND ${only}
      ORDER BY b.balance, b.user_id
      LIMIT ${limit}`.execute(db),
    sql<{ n: number }>`SELECT count(*)::bigint AS n FROM token_balances b WHERE b.balance < 0 AND ${only}`.execute(db),
  ]);
  return { users: rows.rows, count: count.rows[0]?.n ?? 0 };
}

export async function billingOverview(db: Kysely<Database>, range: DateRange): Promise<BillingOverview> {
  const [money, flows, liability, basis, facts, overdrawn] = await Promise.all([
    moneyReceived(db, range),
    tokenFlows(db, range),
    liabilityPerDay(db, range),
    priceBasis(db),
    usageCostFacts(db, range),
    overdrawnUsers(db),
  ]);
  const price = pricePerTokenCents(basis.paid_cents, basis.tokens);
  const top = await topSpenders(db, range, price);
  return {
    money,
    flows,
    liability,
    pricePerToken: price,
    priceBasis: basis,
    byType: marginBy(facts, "action_type", price),
    byModel: marginBy(facts, "model", price),
    totalCostCents: Math.round(facts.reduce((sum, f) => sum + f.cost_cents, 0) * 10_000) / 10_000,
    topSpenders: top,
    overdrawn: overdrawn.users,
    overdrawnCount: overdrawn.count,
  };
}
