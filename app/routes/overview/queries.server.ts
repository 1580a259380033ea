import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import type { DateRange } from "~/domain/period";
import { tokensPerDayByTypeSql, usageFacts, userFacts, withoutParallelWorkers, type DailyTypeTokens } from "~/models/rollup.server";

export type { DailyTypeTokens };

export interface OverviewTotals {
  tokens: number;
  calls: number;
  failures: number;
  costCents: number;
  activeUsers: number;
}

export interface TypeFilter {
  actionType?: string;
}

function typeCondition(filter: TypeFilter) {
  return filter.actionType ? sql`action_type = ${filter.actionType}` : sql`true`;
}

/** Totals for the range from the rollups (plus the queue tail): equal to raw sums, without reading raw rows. */
export async function overviewTotals(db: Kysely<Database>, range: DateRange, filter: TypeFilter = {}): Promise<OverviewTotals> {
  const query = sql<OverviewTotals>`
    SELECT COALESCE(sum(tokens), 0)::bigint AS tokens,
           COALESCE(sum(calls), 0)::bigint AS calls,
           COALESCE(sum(failures), 0)::bigint AS failures,
           COALESCE(sum(cost_cents), 0)::float8 AS "costCents",
           (SELECT count(*) FROM (SELECT user_id FROM (${userFacts(range, { actionType: filter.actionType })}) uf
                                  GROUP BY user_id HAVING sum(calls) > 0) active)::bigint AS "activeUsers"
    FROM (${usageFacts(range)}) f
    WHERE ${typeCondition(filter)}`;
  const result = await withoutParallelWorkers(db, (trx) => query.execute(trx));
  return result.rows[0] as OverviewTotals;
}

/** Tokens and calls per local day (in the range's zone) and action type, from the rollups. */
export async function tokensPerDayByType(db: Kysely<Database>, range: DateRange, filter: TypeFilter = {}): Promise<DailyTypeTokens[]> {
  return (await tokensPerDayByTypeSql(range, range.tz, typeCondition(filter)).execute(db)).rows;
}

/** Outlier flags that occurred in the range, by rule (written by the outlier job). */
export async function outlierCounts(db: Kysely<Database>, range: DateRange, filter: TypeFilter = {}): Promise<{ rule: string; open: number; total: number }[]> {
  const result = await sql<{ rule: string; open: number; total: number }>`
    SELECT rule, count(*) FILTER (WHERE status = 'open')::bigint AS open, count(*)::bigint AS total
    FROM tokenboard.outlier_flags
    WHERE occurred_at >= ${range.start} AND occurred_at < ${range.end}
      AND ${filter.actionType ? sql`action_type = ${filter.actionType}` : sql`true`}
    GROUP BY rule ORDER BY total DESC`.execute(db);
  return result.rows;
}
