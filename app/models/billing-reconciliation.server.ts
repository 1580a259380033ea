/**
 * The reconciliation of adopted balances: per user, tokenboard's balance beside what the seed
 * app's calculate_token_balance and get_user_token_balance would say (computed here from their
 * documented rules; the functions need not exist), with the parts that explain each difference
 * (app/domain/billing-reconciliation.ts). Sorted, filtered and paginated in SQL.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { Database } from "../../db/types";
import { ACTION_TYPES } from "../domain/action-types";
import { SEED_GRANT_KINDS, SEED_USAGE_COPY_KINDS } from "../domain/billing-replay";
import { calculateReasons, getReasons, type DifferenceReason, type ReconciliationParts, type ReconciliationShow, type ReconciliationSort } from "../domain/billing-reconciliation";
import { POOL_MEMBERS_SQL } from "./billing-adoption.server";


export interface ReconciliationQuery {
  sort: ReconciliationSort;
  dir: "asc" | "desc";
  show: ReconciliationShow;
  /** A user id, or the start of one. */
  user: string | null;
  page: number;
  pageSize: number;
}

export interface ReconciliationRow extends ReconciliationParts {
  userId: string;
  email: string | null;
  household: string | null;
  calculate: number;
  get: number;
  legacyUsageCopies: number;
  calculateReasons: DifferenceReason[];
  getReasons: DifferenceReason[];
}

const LEDGER_TYPES = ACTION_TYPES.filter((t) => t.category === "ledger").map((t) => t.name);
const CALCULATE_KINDS = ["admin_grant", "subscription_grant", "trial_grant", "token_pack_purchase"];

const SORT_SQL: Record<ReconciliationSort, RawBuilder<unknown>> = {
  user: sql`user_id`,
  balance: sql`balance`,
  calculate: sql`calculate`,
  get: sql`get`,
  difference: sql`GREATEST(abs(balance - calculate), abs(balance - get))`,
};

function reconciliationSql(query: Omit<ReconciliationQuery, "page" | "pageSize">, limit: number | null, offset: number): RawBuilder<Record<string, unknown>> {
  const show = {
    differs: sql`balance <> calculate OR balance <> get`,
    all: sql`true`,
    overdrawn: sql`balance < 0`,
    pool: sql`household IS NOT NULL`,
  }[query.show];
  const userFilter = query.user ? sql`AND user_id::text LIKE ${`${query.user.toLowerCase()}%`}` : sql``;
  const direction = query.dir === "asc" ? sql`ASC` : sql`DESC`;
  return sql<Record<string, unknown>>`
    WITH pool AS (${POOL_MEMBERS_SQL}),
    pool_admins AS (SELECT DISTINCT admin_user_id, household_name FROM pool),
    tx AS (
      SELECT user_id,
        COALESCE(sum(tokens_used) FILTER (WHERE tokens_used > 0 AND action_type::text = ANY(${CALCULATE_KINDS}::text[])), 0) AS calc_grants,
        COALESCE(sum(abs(tokens_used)) FILTER (WHERE action_type = 'admin_deduct' OR tokens_used < 0), 0) AS calc_deducts,
        COALESCE(sum(tokens_used) FILTER (WHERE tokens_used > 0 AND action_type::text = ANY(${[...SEED_GRANT_KINDS]}::text[]) AND (expires_at IS NULL OR expires_at > now())), 0) AS live_grants,
        COALESCE(sum(tokens_used) FILTER (WHERE tokens_used > 0 AND action_type::text = ANY(${[...SEED_GRANT_KINDS]}::text[]) AND expires_at <= now()), 0) AS expired_grants,
        COALESCE(-sum(tokens_used) FILTER (WHERE tokens_used < 0 AND action_type::text = ANY(${[...SEED_GRANT_KINDS]}::text[])), 0) AS negative_grants,
        COALESCE(sum(tokens_used) FILTER (WHERE tokens_used > 0 AND action_type IN ('renewal_grant', 'pack_purchase')), 0) AS uncounted_kinds,
        COALESCE(-sum(tokens_used) FILTER (WHERE tokens_used < 0 AND action_type = 'manual_adjustment'), 0) AS manual_grants,
        COALESCE(sum(tokens_used) FILTER (WHERE tokens_used > 0 AND action_type = 'manual_adjustment'), 0) AS manual_deducts,
        COALESCE(sum(abs(tokens_used)) FILTER (WHERE action_type = 'admin_deduct'), 0) AS admin_deducts,
        count(*) FILTER (WHERE action_type::text = ANY(${[...SEED_USAGE_COPY_KINDS]}::text[])) AS legacy_copies
      FROM public.token_transactions GROUP BY user_id),
    used AS (
      SELECT user_id, sum(tokens_used) AS tokens FROM public.token_usage
      WHERE success AND user_id IS NOT NULL AND NOT (action_type = ANY(${LEDGER_TYPES}::text[])) GROUP BY user_id),
    pool_used AS (
      SELECT p.admin_user_id AS owner, sum(u.tokens) AS tokens FROM pool p JOIN used u ON u.user_id = p.user_id GROUP BY p.admin_user_id),
    led AS (
      SELECT user_id,
        COALESCE(-sum(amount) FILTER (WHERE kind IN ('usage', 'correction') AND COALESCE(consumer_id, user_id) = user_id), 0) AS charged_self,
        COALESCE(-sum(amount) FILTER (WHERE kind IN ('usage', 'correction') AND COALESCE(consumer_id, user_id) <> user_id), 0) AS charged_members,
        COALESCE(sum(amount) FILTER (WHERE source_ref IS NULL AND kind IN ('grant', 'purchase', 'deduct')), 0) AS native_entries
      FROM tokenboard.ledger_entries GROUP BY user_id),
    elsewhere AS (
      SELECT consumer_id AS user_id, -sum(amount) AS charged FROM tokenboard.ledger_entries
      WHERE kind IN ('usage', 'correction') AND consumer_id IS NOT NULL AND consumer_id <> user_id GROUP BY consumer_id),
    expired AS (
      SELECT x.user_id,
        COALESCE(-sum(x.amount) FILTER (WHERE t.tokens_used > 0), 0) AS positive,
        COALESCE(-sum(x.amount) FILTER (WHERE t.tokens_used < 0), 0) AS negative,
        COALESCE(-sum(x.amount) FILTER (WHERE t.id IS NULL), 0) AS native
      FROM tokenboard.ledger_entries x
      JOIN tokenboard.ledger_entries g ON g.id = x.expired_entry_id
      LEFT JOIN public.token_transactions t ON g.source_ref = 'token_transactions:' || t.id
      WHERE x.kind = 'expiry' GROUP BY x.user_id),
    universe AS (
      SELECT user_id FROM tokenboard.token_balances UNION SELECT user_id FROM public.token_transactions
      UNION SELECT user_id FROM pool UNION SELECT admin_user_id FROM pool_admins),
    parts AS (
      SELECT x.user_id, a.email, COALESCE(b.balance, 0)::bigint AS balance,
        p.admin_user_id AS pool_owner, COALESCE(p.household_name, pa.household_name) AS household,
        COALESCE(tx.calc_grants, 0) - COALESCE(u.tokens, 0) - COALESCE(tx.calc_deducts, 0) AS calculate_raw,
        CASE WHEN p.admin_user_id IS NULL
          THEN COALESCE(tx.live_grants, 0) - COALESCE(u.tokens, 0) - COALESCE(pu.tokens, 0)
          ELSE COALESCE(otx.live_grants, 0) - COALESCE(ou.tokens, 0) - COALESCE(opu.tokens, 0) END AS get_raw,
        COALESCE(tx.negative_grants, 0) AS negative_grants, COALESCE(tx.uncounted_kinds, 0) AS uncounted_kinds,
        COALESCE(tx.manual_grants, 0) AS manual_grants, COALESCE(tx.manual_deducts, 0) AS manual_deducts,
        COALESCE(tx.admin_deducts, 0) AS admin_deducts, COALESCE(tx.expired_grants, 0) AS expired_grants,
        COALESCE(e.positive, 0) AS expired_positive, COALESCE(e.negative, 0) AS expired_negative,
        COALESCE(l.native_entries, 0) - COALESCE(e.native, 0) AS native_net,
        COALESCE(u.tokens, 0) AS usage_own, COALESCE(u.tokens, 0) + COALESCE(pu.tokens, 0) AS usage_pool,
        COALESCE(l.charged_self, 0) AS charged_self, COALESCE(l.charged_members, 0) AS charged_members, COALESCE(el.charged, 0) AS charged_elsewhere,
        COALESCE(tx.legacy_copies, 0) AS legacy_copies
      FROM universe x
      LEFT JOIN tokenboard.app_users a ON a.user_id = x.user_id
      LEFT JOIN tokenboard.token_balances b ON b.user_id = x.user_id
      LEFT JOIN pool p ON p.user_id = x.user_id
      LEFT JOIN pool_admins pa ON pa.admin_user_id = x.user_id
      LEFT JOIN tx ON tx.user_id = x.user_id
      LEFT JOIN used u ON u.user_id = x.user_id
      LEFT JOIN pool_used pu ON pu.owner = x.user_id
      LEFT JOIN tx otx ON otx.user_id = p.admin_user_id
      LEFT JOIN used ou ON ou.user_id = p.admin_user_id
      LEFT JOIN pool_used opu ON opu.owner = p.admin_user_id
      LEFT JOIN led l ON l.user_id = x.user_id
      LEFT JOIN elsewhere el ON el.user_id = x.user_id
      LEFT JOIN expired e ON e.user_id = x.user_id),
    rows AS (SELECT *, GREATEST(calculate_raw, 0) AS calculate, GREATEST(get_raw, 0) AS get FROM parts)
    SELECT *, count(*) OVER () AS total FROM rows
    WHERE (${show}) ${userFilter}
    ORDER BY ${SORT_SQL[query.sort]} ${direction}, user_id ${direction}
    ${limit === null ? sql`` : sql`LIMIT ${limit} OFFSET ${offset}`}`;
}

function toRow(r: Record<string, unknown>): ReconciliationRow {
  const num = (key: string) => Number(r[key] ?? 0);
  const parts: ReconciliationParts = {
    balance: num("balance"), poolOwner: (r.pool_owner as string | null) ?? null, calculateRaw: num("calculate_raw"), getRaw: num("get_raw"),
    negativeGrants: num("negative_grants"), uncountedKinds: num("uncounted_kinds"), manualGrants: num("manual_grants"), manualDeducts: num("manual_deducts"),
    adminDeducts: num("admin_deducts"), expiredGrants: num("expired_grants"), expiredPositive: num("expired_positive"), expiredNegative: num("expired_negative"),
    nativeNet: num("native_net"), usageOwn: num("usage_own"), usagePool: num("usage_pool"),
    chargedSelf: num("charged_self"), chargedMembers: num("charged_members"), chargedElsewhere: num("charged_elsewhere"),
  };
  return {
    ...parts, userId: r.user_id as string, email: (r.email as string | null) ?? null, household: (r.household as string | null) ?? null,
    calculate: num("calculate"), get: num("get"), legacyUsageCopies: num("legacy_copies"),
    calculateReasons: parts.balance === num("calculate") ? [] : calculateReasons(parts),
    getReasons: parts.balance === num("get") ? [] : getReasons(parts),
  };
}

export interface ReconciliationPage {
  rows: ReconciliationRow[];
  total: number;
}

export async function reconciliationPage(db: Kysely<Database>, query: ReconciliationQuery): Promise<ReconciliationPage> {
  const result = await reconciliationSql(query, query.pageSize, (query.page - 1) * query.pageSize).execute(db);
  return { rows: result.rows.map(toRow), total: Number(result.rows[0]?.total ?? 0) };
}

/** Every row of the filter, in the page's order (the CSV download). */
export async function reconciliationRows(db: Kysely<Database>, query: Omit<ReconciliationQuery, "page" | "pageSize">): Promise<ReconciliationRow[]> {
  const result = await reconciliationSql(query, null, 0).execute(db);
  return result.rows.map(toRow);
}
