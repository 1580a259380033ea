import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import type { DateRange } from "~/domain/period";
import { activeUserCountSql, sharedQueueTail, tokensPerDayByTypeSql, usageFacts, userFacts, withoutParallelWorkers, type DailyTypeTokens } from "~/models/rollup.server";

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

export interface OverviewUsage {
  totals: OverviewTotals;
  /** Tokens and calls per local day (in the range's zone) and action type. */
  perDay: DailyTypeTokens[];
}

/**
 * The overview's numbers in one statement, from the rollups plus the queue tail, which is read
 * once for the totals, the active users and the days (sharedQueueTail): equal to raw sums,
 * without reading raw rows.
 */
export async function overviewUsage(db: Kysely<Database>, range: DateRange, filter: TypeFilter = {}): Promise<OverviewUsage> {
  const tail = sharedQueueTail(range, filter.actionType);
  const query = sql<OverviewTotals & { perDay: DailyTypeTokens[] }>`
    WITH ${tail.cte}
    SELECT COALESCE(sum(tokens), 0)::bigint AS tokens,
           COALESCE(sum(calls), 0)::bigint AS calls,
           COALESCE(sum(failures), 0)::bigint AS failures,
           COALESCE(sum(cost_cents), 0)::float8 AS "costCents",
           ${activeUserCountSql(userFacts(range, { actionType: filter.actionType, tail }))}::bigint AS "activeUsers",
           (SELECT COALESCE(json_agg(d ORDER BY d.day, d.action_type), '[]'::json)
            FROM (${tokensPerDayByTypeSql(range, range.tz, typeCondition(filter), tail)}) d) AS "perDay"
    FROM (${usageFacts(range, { tail })}) f
    WHERE ${typeCondition(filter)}`;
  const result = await withoutParallelWorkers(db, (trx) => query.execute(trx));
  const { perDay, ...totals } = result.rows[0] as OverviewTotals & { perDay: DailyTypeTokens[] };
  return { totals, perDay };
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
