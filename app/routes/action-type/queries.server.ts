import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { userFacts, withoutParallelWorkers, type InstantRange } from "~/models/rollup.server";

export interface TopUser {
  user_id: string;
  email: string | null;
  calls: number;
  tokens: number;
  cost_cents: number;
  failures: number;
}

/** Users of one action type (or all) in the range, ranked by a measure, from the per-user rollup. */
export async function topUsers(db: Kysely<Database>, range: InstantRange, options: { actionType?: string; orderBy?: "tokens" | "cost_cents" | "calls"; limit?: number; offset?: number } = {}): Promise<TopUser[]> {
  return withoutParallelWorkers(db, (trx) => rankUsers(trx, range, options));
}

async function rankUsers(db: Kysely<Database>, range: InstantRange, options: { actionType?: string; orderBy?: "tokens" | "cost_cents" | "calls"; limit?: number; offset?: number }): Promise<TopUser[]> {
  const order = sql.ref(options.orderBy ?? "tokens");
  const result = await sql<TopUser>`
    SELECT t.user_id, a.email, t.calls, t.tokens, t.cost_cents, t.failures
    FROM (
      SELECT user_id, sum(calls)::bigint AS calls, sum(tokens)::bigint AS tokens, COALESCE(sum(cost_cents), 0)::float8 AS cost_cents, sum(failures)::bigint AS failures
      FROM (${userFacts(range, { actionType: options.actionType })}) f
      GROUP BY user_id HAVING sum(calls) > 0
      ORDER BY ${order} DESC, user_id LIMIT ${options.limit ?? 10} OFFSET ${options.offset ?? 0}
    ) t LEFT JOIN tokenboard.app_users a ON a.user_id = t.user_id
    ORDER BY ${sql.ref(`t.${options.orderBy ?? "tokens"}`)} DESC, t.user_id`.execute(db);
  return result.rows;
}

export interface RecentOutlier {
  id: number;
  rule: string;
  message: string;
  user_id: string | null;
  route: string | null;
  observed: number | null;
  occurred_at: string;
  status: string;
}

export async function recentOutliers(db: Kysely<Database>, range: InstantRange, filter: { actionType?: string; rule?: string }, limit = 10): Promise<RecentOutlier[]> {
  const result = await sql<RecentOutlier>`
    SELECT id, rule, message, user_id, route, observed, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"') AS occurred_at, status
    FROM tokenboard.outlier_flags
    WHERE occurred_at >= ${range.start} AND occurred_at < ${range.end}
      AND ${filter.actionType ? sql`action_type = ${filter.actionType}` : sql`true`}
      AND ${filter.rule ? sql`rule = ${filter.rule}` : sql`true`}
    ORDER BY occurred_at DESC, id DESC LIMIT ${limit}`.execute(db);
  return result.rows;
}
