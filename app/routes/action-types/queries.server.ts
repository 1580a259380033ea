import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { histogramFacts, usageFacts, type InstantRange } from "~/models/rollup.server";
import type { TypeStats } from "./aggregate";

export type { TypeStats };

const statColumns = sql`
  sum(calls)::bigint AS calls, sum(failures)::bigint AS failures, sum(tokens)::bigint AS tokens,
  COALESCE(sum(cost_cents), 0)::float8 AS cost_cents, sum(below_range)::bigint AS below_range,
  sum(above_range)::bigint AS above_range, max(max_tokens) AS max_tokens`;

/** Per action type for the range, from rollups (+ tail). */
export async function typeStats(db: Kysely<Database>, range: InstantRange, actionType?: string): Promise<TypeStats[]> {
  const result = await sql<TypeStats>`
    SELECT action_type, ${statColumns}
    FROM (${usageFacts(range)}) f
    WHERE ${actionType ? sql`action_type = ${actionType}` : sql`true`}
    GROUP BY action_type HAVING sum(calls) <> 0`.execute(db);
  return result.rows;
}

/** Histogram bins per action type (a few dozen rows per type). */
export async function typeHistograms(db: Kysely<Database>, range: InstantRange, actionType?: string): Promise<{ action_type: string; bin: number; calls: number }[]> {
  const result = await sql<{ action_type: string; bin: number; calls: number }>`
    SELECT action_type, bin, sum(calls)::bigint AS calls
    FROM (${histogramFacts(range)}) h
    WHERE ${actionType ? sql`action_type = ${actionType}` : sql`true`}
    GROUP BY action_type, bin HAVING sum(calls) > 0`.execute(db);
  return result.rows;
}

export type Dimension = "route" | "model";

/** One action type broken down by route or by model. */
export async function typeBreakdown(db: Kysely<Database>, range: InstantRange, actionType: string, dimension: Dimension): Promise<(TypeStats & { key: string | null })[]> {
  const column = sql.ref(dimension);
  const result = await sql<TypeStats & { key: string | null }>`
    SELECT ${column} AS key, action_type, ${statColumns}
    FROM (${usageFacts(range)}) f
    WHERE action_type = ${actionType}
    GROUP BY ${column}, action_type HAVING sum(calls) <> 0
    ORDER BY sum(tokens) DESC`.execute(db);
  return result.rows;
}

export async function currentOverrides(db: Kysely<Database>): Promise<Map<string, number>> {
  const rows = await db.selectFrom("ai_action_token_overrides").select(["action_type", "token_value"]).execute();
  return new Map(rows.map((r) => [r.action_type, r.token_value]));
}
