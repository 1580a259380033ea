/**
 * Monthly reports: the page, the monthly CSV, the raw CSV and the CLI all read through this
 * module. One aggregate query (`aggregateSql`) computes every figure, grouped by whatever
 * the reader needs; its grand-total grouping set is the page's total and the CSV's TOTAL row,
 * so the two cannot disagree.
 *
 * Month bounds and the zone are not interpolated into SQL: they are set for one read-only
 * transaction (set_config(…, true)) and referenced with current_setting(). That lets the same
 * SQL text run as a plain query and inside COPY … TO STDOUT, which takes no bind parameters.
 * The session TimeZone is the report's zone, so to_char() prints local days and offsets.
 */
import { pipeline, type Readable } from "node:stream";
import { DummyDriver, Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from "kysely";
import type pg from "pg";
import pgCopy from "pg-copy-streams";
import type { Database } from "../../db/types";
import { ACTION_TYPES } from "../domain/action-types";
import { neutralizeSql, type CsvColumnKind } from "../domain/csv";
import { coalesceChunks } from "../lib/coalesce-stream.server";
import type { MonthPeriod } from "../domain/period";
import type { DateTime } from "luxon";
import { costCentsSql } from "./cost.server";
import { tokensPerDayByTypeSql, USER_MONTH_OPEN_FROM_SQL, userRangeSplit, utcDays } from "./rollup.server";

/** Compiles SQL fragments to text without a connection. */
const offlineCompiler = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});
const COST_CENTS_SQL = costCentsSql.compile(offlineCompiler).sql;

/** A month (or zone) PostgreSQL refuses; `field` names the URL parameter / CLI option. */
export class ReportInputError extends Error {
  constructor(
    readonly field: "month" | "tz",
    message: string,
  ) {
    super(message);
  }
}

type Scope = "report" | "previous";
/**
 * A bound as a scalar subquery: PostgreSQL evaluates it once per query (an InitPlan) instead of
 * parsing the setting's text on every row it compares, which in a filter over 100,000s of rows
 * costs more than the rest of the row's work.
 */
const setting = (name: string, type: string) => `(SELECT current_setting('tokenboard.${name}')::${type})`;
const startOf = (scope: Scope) => setting(`${scope}_start`, "timestamptz");
const endOf = (scope: Scope) => setting(`${scope}_end`, "timestamptz");

/** The registry's expected ranges as a relation, so out-of-range counts are SQL aggregates. */
const EXPECTED_RANGES_SQL = `(VALUES ${ACTION_TYPES.filter((t) => t.expectedRange)
  .map((t) => `('${t.name.replace(/'/g, "''")}', ${t.expectedRange?.min}, ${t.expectedRange?.max})`)
  .join(", ")}) AS r(action_type, min_tokens, max_tokens)`;

type GroupColumn = "user_id" | "action_type";

/**
 * The month's instants split for the rollups: whole UTC days [d0, d1) come from the rollups
 * (plus the rollup queue's tail of those days), the partial days at either end from raw rows.
 * A month in any zone is at least 27 whole UTC days, so raw rows are at most two partial days.
 * When there is no whole day, d1 = d0 and the two edges cover the range. The whole days lie
 * in one UTC month [m, m1) (offsets are under a day): `use_month` then reads that month's row
 * of user_usage_month minus the day rows of the month outside [d0, d1), at most two days.
 *
 * An edge the month covers for more than half of its UTC day (New York's first, Kolkata's
 * last) is read as that day's rollup row minus the raw rows of the part outside the month, the
 * rule userRangeSplit applies for the per-user pages: `lead_sub` for the day r0 = d0 − 1,
 * `tail_sub` for the day d1; [r0, r1) are the days read from rollups and the queue. So at most
 * half a day of raw rows is read at each end (New York: 8 hours in all instead of 24).
 *
 * Computed here and set per transaction like the bounds (openScope), so every condition is a
 * stable expression: index scans with run-time keys, and branches switched off by use_month
 * are one-time filters that never run.
 */
export function reportBounds(start: Date, end: Date): Record<keyof typeof BOUND_TYPES, string> {
  const { innerFrom: d0, innerTo: d1 } = utcDays({ start, end });
  const m = d0.startOf("month");
  const m1 = m.plus({ months: 1 });
  const edges = userRangeSplit({ start, end }).days;
  const leadSub = d0 < d1 && edges !== null && edges.fromInstant < d0.toJSDate();
  const tailSub = d0 < d1 && edges !== null && edges.toInstant > d1.toJSDate();
  const r0 = leadSub ? d0.minus({ days: 1 }) : d0;
  const r1 = tailSub ? d1.plus({ days: 1 }) : d1;
  const date = (d: DateTime) => d.toISODate() as string;
  const instant = (d: DateTime) => d.toISO() as string;
  return {
    d0: date(d0), d1: date(d1), d0i: instant(d0), d1i: instant(d1), m: date(m), m1: date(m1), use_month: String(d0 < d1 && d1 <= m1),
    lead_sub: String(leadSub), tail_sub: String(tailSub), r0: date(r0), r0i: instant(r0), r1i: instant(r1),
  };
}

const BOUND_TYPES = {
  d0: "date", d1: "date", d0i: "timestamptz", d1i: "timestamptz", m: "date", m1: "date", use_month: "boolean",
  lead_sub: "boolean", tail_sub: "boolean", r0: "date", r0i: "timestamptz", r1i: "timestamptz",
} as const;
const bound = (scope: Scope, name: keyof typeof BOUND_TYPES) => setting(`${scope}_${name}`, BOUND_TYPES[name]);

/**
 * One row's measures, for a raw row (priced through `p`, its pricing join) or a queued row (priced
 * when queued: `queued`, `sign` -1 for a deleted row). Its time counts as a first or last call
 * only for an added row and where `inside` holds.
 */
function rowMeasures(sign: string, inside = "true", queued = false): string {
  const at = `CASE WHEN ${sign} > 0 AND ${inside} THEN u.created_at END`;
  return `u.user_id, u.action_type, ${sign} AS calls, ${sign} * u.tokens_used AS tokens, ${sign} * (${queued ? "u.cost_cents" : COST_CENTS_SQL}) AS cost_cents,
      CASE WHEN u.success THEN 0 ELSE ${sign} END AS failures,
      CASE WHEN u.tokens_used < r.min_tokens THEN ${sign} ELSE 0 END AS below,
      CASE WHEN u.tokens_used > r.max_tokens THEN ${sign} ELSE 0 END AS above,
      ${at} AS first_at, ${at} AS last_at`;
}

/**
 * The month per (user, action type), exact at the moment it runs: rollup days + queue tail +
 * raw edges. Cost is rounded to 4 decimals of a cent per (user, type), so every sum of these
 * rows (per type, TOTAL) is exactly the sum of the printed values.
 */
function userTypeMonthSql(scope: Scope): string {
  const rangeJoin = `LEFT JOIN ${EXPECTED_RANGES_SQL} ON r.action_type = u.action_type`;
  const joins = `LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used ${rangeJoin}`;
  const [s, e] = [startOf(scope), endOf(scope)];
  const b = (name: keyof typeof BOUND_TYPES) => bound(scope, name);
  // A month row's first (last) call is the pair's first (last) in the range when it lies in the
  // range: it is the extreme of the whole UTC month, a superset of the range's part in it.
  // Otherwise the first (last) whole day holding one gives it.
  const inRange = (column: string) => `${column} >= ${s} AND ${column} < ${e}`;
  return `SELECT x.user_id, x.action_type, sum(x.calls) AS calls, sum(x.tokens) AS tokens_used, round(sum(x.cost_cents), 4) AS cost_cents,
      sum(x.failures) AS failures, sum(x.below) AS below_range, sum(x.above) AS above_range, min(x.first_at) AS first_at, max(x.last_at) AS last_at
    FROM (
      SELECT m.user_id, m.action_type, m.calls, m.tokens, m.cost_cents, m.failures, m.below_range AS below, m.above_range AS above,
        CASE WHEN ${inRange("m.first_at")} THEN m.first_at ELSE (
          SELECT d.first_at FROM tokenboard.user_usage_day d WHERE d.user_id = m.user_id AND d.action_type = m.action_type
            AND d.day >= ${b("d0")} AND d.day < ${b("d1")} AND d.first_at IS NOT NULL ORDER BY d.day LIMIT 1) END AS first_at,
        CASE WHEN ${inRange("m.last_at")} THEN m.last_at ELSE (
          SELECT d.last_at FROM tokenboard.user_usage_day d WHERE d.user_id = m.user_id AND d.action_type = m.action_type
            AND d.day >= ${b("d0")} AND d.day < ${b("d1")} AND d.last_at IS NOT NULL ORDER BY d.day DESC LIMIT 1) END AS last_at
      FROM tokenboard.user_usage_month m
      WHERE ${b("use_month")} AND m.month = ${b("m")}
      UNION ALL
      -- The month's open days, not in its row yet (migration 0018); those outside [d0, d1) are
      -- subtracted below like the month's other days, and give no first or last call.
      SELECT d.user_id, d.action_type, d.calls, d.tokens, d.cost_cents, d.failures, d.below_range, d.above_range,
        CASE WHEN d.day >= ${b("d0")} AND d.day < ${b("d1")} THEN d.first_at END, CASE WHEN d.day >= ${b("d0")} AND d.day < ${b("d1")} THEN d.last_at END
      FROM tokenboard.user_usage_day d
      WHERE ${b("use_month")} AND d.day >= GREATEST(${b("m")}, ${USER_MONTH_OPEN_FROM_SQL}) AND d.day < ${b("m1")}
      UNION ALL
      SELECT d.user_id, d.action_type, -d.calls, -d.tokens, -d.cost_cents, -d.failures, -d.below_range, -d.above_range, NULL, NULL
      FROM tokenboard.user_usage_day d
      WHERE ${b("use_month")} AND ((d.day >= ${b("m")} AND d.day < ${b("d0")}) OR (d.day >= ${b("d1")} AND d.day < ${b("m1")}))
      UNION ALL
      SELECT d.user_id, d.action_type, d.calls, d.tokens, d.cost_cents, d.failures, d.below_range, d.above_range, d.first_at, d.last_at
      FROM tokenboard.user_usage_day d
      WHERE NOT ${b("use_month")} AND d.day >= ${b("d0")} AND d.day < ${b("d1")}
      UNION ALL
      -- An edge day read whole (lead_sub / tail_sub). Its first or last call may lie in the part
      -- outside the month: then the pair's first (last) call inside is looked up in raw rows.
      SELECT d.user_id, d.action_type, d.calls, d.tokens, d.cost_cents, d.failures, d.below_range, d.above_range,
        CASE WHEN ${inRange("d.first_at")} THEN d.first_at WHEN d.first_at < ${s} THEN (
          SELECT min(u.created_at) FROM token_usage u WHERE u.user_id = d.user_id AND u.action_type = d.action_type
            AND u.created_at >= ${s} AND u.created_at < ${b("d0i")}) END,
        CASE WHEN ${inRange("d.last_at")} THEN d.last_at WHEN d.last_at >= ${e} THEN (
          SELECT max(u.created_at) FROM token_usage u WHERE u.user_id = d.user_id AND u.action_type = d.action_type
            AND u.created_at >= ${b("d1i")} AND u.created_at < ${e}) END
      FROM tokenboard.user_usage_day d
      WHERE (${b("lead_sub")} AND d.day = ${b("r0")}) OR (${b("tail_sub")} AND d.day = ${b("d1")})
      UNION ALL
      SELECT ${rowMeasures("u.sign", `u.created_at >= ${s} AND u.created_at < ${e}`, true)}
      FROM tokenboard.usage_rollup_queue u ${rangeJoin}
      WHERE u.created_at >= ${b("r0i")} AND u.created_at < ${b("r1i")}
      UNION ALL
      SELECT ${rowMeasures("1")}
      FROM token_usage u ${joins}
      WHERE NOT ${b("lead_sub")} AND u.created_at >= ${s} AND u.created_at < LEAST(${b("d0i")}, ${e})
      UNION ALL
      SELECT ${rowMeasures("1")}
      FROM token_usage u ${joins}
      WHERE NOT ${b("tail_sub")} AND u.created_at >= GREATEST(${b("d1i")}, ${s}) AND u.created_at < ${e}
      UNION ALL
      -- The parts of edge days read whole that lie outside the month.
      SELECT ${rowMeasures("-1")}
      FROM token_usage u ${joins}
      WHERE ${b("lead_sub")} AND u.created_at >= ${b("r0i")} AND u.created_at < ${s}
      UNION ALL
      SELECT ${rowMeasures("-1")}
      FROM token_usage u ${joins}
      WHERE ${b("tail_sub")} AND u.created_at >= ${e} AND u.created_at < ${b("r1i")}
    ) x
    GROUP BY x.user_id, x.action_type
    HAVING sum(x.calls) <> 0`;
}

/**
 * Calls, tokens, cost, failures, out-of-range counts, distinct users and first/last call per
 * grouping set, from the per (user, action type) rows of the month. `g_user`/`g_type` are 1
 * where that column is rolled up (1 for both: the total).
 */
function aggregateSql(scope: Scope, sets: GroupColumn[][]): string {
  const used = new Set(sets.flat());
  const grouping = (col: GroupColumn) => (used.has(col) ? `GROUPING(m.${col})` : "1");
  const setsSql = sets.map((set) => `(${set.map((c) => `m.${c}`).join(", ")})`).join(", ");
  return `SELECT ${used.has("user_id") ? "m.user_id" : "NULL::uuid AS user_id"},
      ${used.has("action_type") ? "m.action_type" : "NULL::text AS action_type"},
      ${grouping("user_id")} AS g_user, ${grouping("action_type")} AS g_type,
      COALESCE(sum(m.calls), 0)::bigint AS calls,
      COALESCE(sum(m.tokens_used), 0)::bigint AS tokens_used,
      COALESCE(sum(m.cost_cents), 0) AS cost_cents,
      COALESCE(sum(m.failures), 0)::bigint AS failures,
      COALESCE(sum(m.below_range), 0)::bigint AS below_range,
      COALESCE(sum(m.above_range), 0)::bigint AS above_range,
      ${usersSql(used)} AS users,
      min(m.first_at) AS first_at,
      max(m.last_at) AS last_at
    FROM (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY action_type) = 1 AS first_of_user FROM (${userTypeMonthSql(scope)}) ut) m
    GROUP BY GROUPING SETS (${setsSql})`;
}

/**
 * Distinct users without count(DISTINCT), which would force a sort per grouping set: the rows
 * are unique per (user, action type), so a set with user_id has 1 user, a set with only
 * action_type has one user per row, and the total counts each user's first row.
 */
function usersSql(used: Set<GroupColumn>): string {
  const byUser = used.has("user_id") ? "WHEN GROUPING(m.user_id) = 0 THEN 1 " : "";
  const byType = used.has("action_type") ? "WHEN GROUPING(m.action_type) = 0 THEN count(*) " : "";
  const total = "count(*) FILTER (WHERE m.first_of_user)";
  return byUser || byType ? `(CASE ${byUser}${byType}ELSE ${total} END)::bigint` : `${total}::bigint`;
}

export interface CsvColumn {
  name: string;
  kind: CsvColumnKind | "uuid" | "json";
  /** SQL over the export's FROM clause. */
  sql: string;
  description: string;
}

/**
 * How the month's zone writes its offsets: whole hours only (UTC, Berlin), never whole hours
 * (Kolkata, Chatham) or both (a zone that moves by 30 minutes, such as Lord Howe). Sampled every
 * 15 minutes of the month: zone transitions fall on 15-minute UTC boundaries, as the rollups'
 * buckets assume (docs/rollups.md), so every offset in force during the month is seen.
 */
export type OffsetForm = "hours" | "minutes" | "mixed";

/**
 * ISO 8601 with the session zone's offset as ±hh:mm. The timestamptz text form (DateStyle ISO)
 * is several times cheaper than to_char() per row; it writes whole-hour offsets as ±hh, which
 * JavaScript's Date cannot parse, hence the ":00" — decided once per export when the month's
 * offsets allow it, else per row.
 */
function isoWithOffsetSql(expr: string, offsets: OffsetForm): string {
  const text = `replace(${expr}::text, ' ', 'T')`;
  if (offsets === "hours") return `${text} || ':00'`;
  if (offsets === "minutes") return text;
  return `${text} || CASE WHEN date_part('timezone_minute', ${expr}) = 0 THEN ':00' ELSE '' END`;
}

function renderColumn(column: CsvColumn, offsets: OffsetForm): string {
  const expr = (() => {
    switch (column.kind) {
      case "text":
        return neutralizeSql(`(${column.sql})::text`);
      case "json":
        // JSON text starts with { [ " t f n or a digit, or "-" for a negative number: only a
        // number can look like a formula, and the type test spares rendering the text twice.
        return `CASE WHEN jsonb_typeof(${column.sql}) = 'number' THEN ${neutralizeSql(`(${column.sql})::text`)} ELSE (${column.sql})::text END`;
      case "timestamp":
        return isoWithOffsetSql(column.sql, offsets);
      case "uuid":
        // A UUID never starts with a formula character: no neutralisation, and no cast, so
        // COPY writes it with uuid_out once instead of through a text copy of it.
        return column.sql;
      case "boolean":
        return `CASE WHEN ${column.sql} THEN 'true' WHEN NOT ${column.sql} THEN 'false' END`;
      case "number":
        return column.sql;
    }
  })();
  return `${expr} AS "${column.name}"`;
}

/** Monthly export: one row per (user, action type), then the TOTAL row. Documented in docs/reports.md. */
export const MONTHLY_COLUMNS: CsvColumn[] = [
  { name: "user_id", kind: "text", sql: "CASE WHEN a.g_user = 1 THEN 'TOTAL' ELSE a.user_id::text END", description: "the user's UUID; TOTAL on the last row" },
  { name: "action_type", kind: "text", sql: "a.action_type", description: "action type (empty on the TOTAL row)" },
  { name: "calls", kind: "number", sql: "a.calls", description: "usage rows (AI calls) in the month" },
  { name: "tokens_used", kind: "number", sql: "a.tokens_used", description: "sum of tokens_used" },
  { name: "cost_usd", kind: "number", sql: "round(a.cost_cents * 0.01, 6)", description: "cost in US dollars: calculated_cost_cents, else the model's pricing" },
  { name: "email", kind: "text", sql: "e.email", description: "the user's email when known (tokenboard.app_users)" },
  { name: "users", kind: "number", sql: "a.users", description: "distinct users: 1 on user rows, active users on the TOTAL row" },
  { name: "failures", kind: "number", sql: "a.failures", description: "calls with success = false" },
  { name: "below_range", kind: "number", sql: "a.below_range", description: "calls below the type's expected range" },
  { name: "above_range", kind: "number", sql: "a.above_range", description: "calls above the type's expected range" },
  { name: "first_at", kind: "timestamp", sql: "a.first_at", description: "first call, ISO 8601 with the zone's offset" },
  { name: "last_at", kind: "timestamp", sql: "a.last_at", description: "last call, ISO 8601 with the zone's offset" },
];

export function monthlyCsvSql(offsets: OffsetForm = "mixed"): string {
  return `SELECT ${MONTHLY_COLUMNS.map((c) => renderColumn(c, offsets)).join(",\n  ")}
    FROM (${aggregateSql("report", [["user_id", "action_type"], []])}) a
    LEFT JOIN app_users e ON e.user_id = a.user_id
    ORDER BY a.g_user, a.user_id, a.action_type`;
}

/** Raw export: every usage row of the month, oldest first. */
export const RAW_COLUMNS: CsvColumn[] = [
  { name: "id", kind: "uuid", sql: "u.id", description: "usage row id" },
  { name: "created_at", kind: "timestamp", sql: "u.created_at", description: "ISO 8601 with the zone's offset, microseconds" },
  { name: "user_id", kind: "uuid", sql: "u.user_id", description: "the user's UUID" },
  { name: "email", kind: "text", sql: "e.email", description: "the user's email when known" },
  { name: "action_type", kind: "text", sql: "u.action_type", description: "action type" },
  { name: "route", kind: "text", sql: "u.route", description: "route that made the call, when known" },
  { name: "model_used", kind: "text", sql: "u.model_used", description: "model" },
  { name: "tokens_used", kind: "number", sql: "u.tokens_used", description: "tokens charged" },
  { name: "input_tokens", kind: "number", sql: "u.input_tokens", description: "prompt tokens" },
  { name: "output_tokens", kind: "number", sql: "u.output_tokens", description: "completion tokens" },
  { name: "success", kind: "boolean", sql: "u.success", description: "true or false" },
  { name: "error_message", kind: "text", sql: "u.error_message", description: "error of a failed call" },
  { name: "cost_usd", kind: "number", sql: `round(${COST_CENTS_SQL}, 4) * 0.01`, description: "cost in US dollars, as in the monthly export" },
  { name: "calculated_cost_cents", kind: "number", sql: "u.calculated_cost_cents", description: "cost the app recorded, in cents (empty if none)" },
  { name: "audio_seconds", kind: "number", sql: "u.audio_seconds", description: "audio length for audio types" },
  { name: "event_id", kind: "text", sql: "u.event_id", description: "ingest idempotency id, when sent" },
  { name: "metadata", kind: "json", sql: "u.metadata", description: "metadata JSON" },
];

export function rawCsvSql(offsets: OffsetForm = "mixed"): string {
  return `SELECT ${RAW_COLUMNS.map((c) => renderColumn(c, offsets)).join(",\n  ")}
    FROM token_usage u
    LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    LEFT JOIN app_users e ON e.user_id = u.user_id
    WHERE u.created_at >= ${startOf("report")} AND u.created_at < ${endOf("report")}
    ORDER BY u.created_at, u.id`;
}

/**
 * Planner settings for a report's transaction. Its (user, action type) rows are nearly one per
 * month rollup row, which the planner cannot know: it estimates a tenth and picks hash
 * aggregates that then hold ~110 MB for 120,000 groups (or spill). Sorted grouping of a sorted
 * stream needs a fraction of that memory, and on a fresh connection (every CLI export) memory a
 * backend touches for the first time is what costs most here. On the 10M bench set: monthly CSV
 * 1.77 s → 1.14 s on a new connection, 1.29 s → 1.06 s warm; the page (UTC) 1.5–2.0 s → 1.0–1.4 s.
 * work_mem keeps the CSV's final sort (~35 MB) off disk.
 */
const REPORT_SETTINGS = "SET LOCAL work_mem = '96MB'; SET LOCAL enable_hashagg = off";

/**
 * The raw export's plan: rows in created_at order from idx_token_usage_created_at, with only
 * equal timestamps sorted by id (an incremental sort), read and rendered by two parallel
 * workers while this backend only merges their ordered streams and writes COPY's output.
 *  - The month's bounds are InitPlan parameters, so the planner guesses 0.5% of the table and
 *    picks a full sort of the rendered rows, which spills: on 1M bench rows 203 MB of temporary
 *    files and 1.6 s of a 4.1 s query. Without plain sorts it takes the index order.
 *  - The same guess makes a parallel plan look too dear. COPY's text output (CSV quoting,
 *    sending) is the longest path and cannot be shared, so the leader does only that
 *    (parallel_leader_participation off) and the scan, joins and rendering go to the workers.
 *    Sorted streams come back through Gather Merge, still in order; with no worker free the
 *    leader runs the plan itself.
 * Measured in the bench's child process, 2 cores, alternating runs: 1M rows 6.0–6.2 s before;
 * serial without the sort 4.8–7.4 s; one worker beside the leader 4.2–6.7 s; two workers and
 * the leader writing 3.8–5.4 s. 10M rows: 48.5–50.7 s before, one worker 39.0–47.1 s.
 */
export const RAW_EXPORT_SETTINGS = [
  "SET LOCAL enable_sort = off",
  "SET LOCAL max_parallel_workers_per_gather = 2",
  "SET LOCAL parallel_leader_participation = off",
  "SET LOCAL parallel_setup_cost = 0",
  "SET LOCAL parallel_tuple_cost = 0",
  "SET LOCAL min_parallel_index_scan_size = 0",
].join("; ");

/**
 * Starts a read-only transaction on a dedicated connection with the month's bounds and zone.
 * REPEATABLE READ: every query of one page sees the same snapshot. A zone PostgreSQL does not
 * know becomes a ReportInputError.
 */
async function openScope(pool: pg.Pool, period: MonthPeriod, previous?: MonthPeriod): Promise<pg.PoolClient> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    await client.query(REPORT_SETTINGS);
    const prev = previous ?? period;
    const settings: [string, string][] = [
      ["report_start", period.start.toISOString()], ["report_end", period.end.toISOString()],
      ["previous_start", prev.start.toISOString()], ["previous_end", prev.end.toISOString()],
      ...Object.entries(reportBounds(period.start, period.end)).map(([k, v]): [string, string] => [`report_${k}`, v]),
      ...Object.entries(reportBounds(prev.start, prev.end)).map(([k, v]): [string, string] => [`previous_${k}`, v]),
    ];
    await client.query(
      `SELECT ${settings.map((_, i) => `set_config('tokenboard.' || $${2 * i + 1}::text, $${2 * i + 2}::text, true)`).join(", ")}`,
      settings.flat(),
    );
    try {
      await client.query("SELECT set_config('TimeZone', $1, true)", [period.tz]);
    } catch {
      throw new ReportInputError("tz", `time zone ${JSON.stringify(period.tz)} is not known to the database; use another IANA name`);
    }
    return client;
  } catch (error) {
    client.release(true);
    throw error;
  }
}

export async function withReportScope<T>(pool: pg.Pool, period: MonthPeriod, previous: MonthPeriod | undefined, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await openScope(pool, period, previous);
  try {
    const result = await fn(client);
    await client.query("COMMIT");
    client.release();
    return result;
  } catch (error) {
    // A broken or aborted connection is not returned to the pool.
    client.release(true);
    throw error;
  }
}

export type CsvExportKind = "monthly" | "raw";

/**
 * COPY … TO STDOUT as a Node stream: constant memory (backpressure pauses the socket), nothing
 * written on the server. The connection is returned after the last byte; when the reader goes
 * away (`signal`, or the stream is destroyed) the connection is closed, which makes PostgreSQL
 * abort the query.
 */
export async function openCsvExport(pool: pg.Pool, kind: CsvExportKind, period: MonthPeriod, signal?: AbortSignal): Promise<Readable> {
  const client = await openScope(pool, period);
  let released = false;
  const release = (error?: Error) => {
    if (released) return;
    released = true;
    client.release(error ?? undefined);
  };
  let text: string;
  try {
    const offsets = await offsetForm(client);
    if (kind === "raw") await client.query(RAW_EXPORT_SETTINGS);
    text = kind === "monthly" ? monthlyCsvSql(offsets) : rawCsvSql(offsets);
  } catch (error) {
    release(error as Error);
    throw error;
  }
  const copy = client.query(pgCopy.to(`COPY (${text}) TO STDOUT WITH (FORMAT csv, HEADER true)`));
  copy.on("end", () => {
    client.query("COMMIT").then(() => release(), (error: Error) => release(error));
  });
  copy.on("error", (error) => release(error));
  copy.on("close", () => {
    if (!copy.readableEnded) release(new Error("export stream closed before its end"));
  });
  const abort = () => copy.destroy(new Error("client went away"));
  if (signal?.aborted) abort();
  else signal?.addEventListener("abort", abort, { once: true });
  copy.on("close", () => signal?.removeEventListener("abort", abort));
  // Destroying the joined stream destroys the COPY (and the other way round, with its error).
  const joined = coalesceChunks();
  pipeline(copy, joined, () => {});
  return joined;
}

/** The offset form of the report's zone over its month (see OffsetForm), in the open scope. */
export async function offsetForm(client: pg.PoolClient): Promise<OffsetForm> {
  const { rows } = await client.query<{ hours: boolean; minutes: boolean }>(
    `SELECT bool_and(m = 0) AS hours, bool_and(m <> 0) AS minutes
     FROM (SELECT date_part('timezone_minute', t) AS m
           FROM generate_series(${startOf("report")}, ${endOf("report")} - interval '1 microsecond', interval '15 minutes') t) s`,
  );
  const row = rows[0];
  return row?.hours ? "hours" : row?.minutes ? "minutes" : "mixed";
}

// ---------------------------------------------------------------- page figures

export interface AggregateRow {
  user_id: string | null;
  action_type: string | null;
  g_user: number;
  g_type: number;
  calls: number;
  tokens_used: number;
  cost_cents: number;
  failures: number;
  below_range: number;
  above_range: number;
  users: number;
  first_at: Date | null;
  last_at: Date | null;
}

export interface TopUserRow extends AggregateRow {
  email: string | null;
  display_name: string | null;
}

export interface DailyTypeRow {
  day: string;
  action_type: string;
  tokens: number;
  calls: number;
}

export interface LedgerKindRow {
  kind: string;
  entries: number;
  amount: number;
}

export interface OutlierRuleRow {
  rule: string;
  flags: number;
  open: number;
}

export interface MonthlyReportData {
  total: AggregateRow;
  previousTotal: AggregateRow;
  byType: AggregateRow[];
  topUsers: TopUserRow[];
  perDay: DailyTypeRow[];
  ledger: LedgerKindRow[];
  outliers: OutlierRuleRow[];
}

export const TOP_USERS = 10;

/** Everything the /reports page shows, from one snapshot. */
export async function monthlyReport(pool: pg.Pool, period: MonthPeriod, previous: MonthPeriod): Promise<MonthlyReportData> {
  return withReportScope(pool, period, previous, async (client) => {
    const grouped = await client.query<AggregateRow & { rank: number }>(
      `SELECT * FROM (
         SELECT a.*, row_number() OVER (PARTITION BY a.g_user, a.g_type ORDER BY a.tokens_used DESC, a.user_id, a.action_type)::int AS rank
         FROM (${aggregateSql("report", [["action_type"], ["user_id"], []])}) a
       ) ranked
       WHERE NOT (g_user = 0 AND rank > ${TOP_USERS})`,
    );
    const previousTotal = await client.query<AggregateRow>(aggregateSql("previous", [[]]));
    // From the rollups (15-minute buckets group exactly into local days), not the month's raw rows.
    const perDayQuery = tokensPerDayByTypeSql(period, period.tz).compile(offlineCompiler);
    const perDay = await client.query<DailyTypeRow>(perDayQuery.sql, [...perDayQuery.parameters]);
    const ledger = await client.query<LedgerKindRow>(
      `SELECT kind, count(*)::bigint AS entries, sum(amount)::bigint AS amount FROM ledger_entries
       WHERE created_at >= ${startOf("report")} AND created_at < ${endOf("report")} GROUP BY kind ORDER BY kind`,
    );
    const outliers = await client.query<OutlierRuleRow>(
      `SELECT rule, count(*)::bigint AS flags, count(*) FILTER (WHERE status = 'open')::bigint AS open FROM outlier_flags
       WHERE occurred_at >= ${startOf("report")} AND occurred_at < ${endOf("report")} GROUP BY rule ORDER BY rule`,
    );
    const total = grouped.rows.find((r) => r.g_user === 1 && r.g_type === 1);
    const users = grouped.rows.filter((r) => r.g_user === 0).sort((a, b) => a.rank - b.rank);
    const names = users.length
      ? await client.query<{ user_id: string; email: string | null; display_name: string | null }>(
          "SELECT user_id::text, email, display_name FROM app_users WHERE user_id = ANY ($1::uuid[])",
          [users.map((u) => u.user_id)],
        )
      : { rows: [] };
    const nameOf = new Map(names.rows.map((n) => [n.user_id, n]));
    return {
      total: total as AggregateRow,
      previousTotal: previousTotal.rows[0] as AggregateRow,
      byType: grouped.rows.filter((r) => r.g_user === 1 && r.g_type === 0).sort((a, b) => b.tokens_used - a.tokens_used),
      topUsers: users.map((u) => ({ ...u, email: nameOf.get(u.user_id ?? "")?.email ?? null, display_name: nameOf.get(u.user_id ?? "")?.display_name ?? null })),
      perDay: perDay.rows,
      ledger: ledger.rows,
      outliers: outliers.rows,
    };
  });
}
