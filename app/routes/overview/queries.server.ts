import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import type { DateRange } from "~/domain/period";
import { costCentsSql } from "~/models/cost.server";

export interface OverviewTotals {
  tokens: number;
  calls: number;
  failures: number;
  costCents: number;
  activeUsers: number;
}

export interface DailyTypeTokens {
  day: string;
  action_type: string;
  tokens: number;
  calls: number;
}

export interface TypeFilter {
  actionType?: string;
}

/** Totals for the range, in one aggregate query. */
export async function overviewTotals(db: Kysely<Database>, range: DateRange, filter: TypeFilter = {}): Promise<OverviewTotals> {
  const result = await sql<OverviewTotals>`
    SELECT COALESCE(sum(u.tokens_used), 0)::bigint AS tokens,
           count(*)::bigint AS calls,
           count(*) FILTER (WHERE NOT u.success)::bigint AS failures,
           COALESCE(sum(${costCentsSql}), 0)::float8 AS "costCents",
           count(DISTINCT u.user_id)::bigint AS "activeUsers"
    FROM token_usage u
    LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end}
      ${filter.actionType ? sql`AND u.action_type = ${filter.actionType}` : sql``}`.execute(db);
  return result.rows[0] as OverviewTotals;
}

/** Tokens and calls per local day (in the range's zone) and action type. */
export async function tokensPerDayByType(db: Kysely<Database>, range: DateRange, filter: TypeFilter = {}): Promise<DailyTypeTokens[]> {
  const result = await sql<DailyTypeTokens>`
    SELECT to_char((u.created_at AT TIME ZONE ${range.tz})::date, 'YYYY-MM-DD') AS day,
           u.action_type,
           sum(u.tokens_used)::bigint AS tokens,
           count(*)::bigint AS calls
    FROM token_usage u
    WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end}
      ${filter.actionType ? sql`AND u.action_type = ${filter.actionType}` : sql``}
    GROUP BY 1, 2
    ORDER BY 1, 2`.execute(db);
  return result.rows;
}
