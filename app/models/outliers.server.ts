/**
 * The outlier detection job. SQL reads the rollups (plus their queue tail) and, only where
 * they show something, token_usage by index, and returns candidates (calls or daily
 * aggregates that could be outliers, already narrowed by the cheap part of each rule); the
 * pure rule modules in app/domain/outlier-rules decide and describe; findings are upserted
 * set-based into tokenboard.outlier_flags, keyed by dedupe_key.
 *
 * Incremental: a watermark (the start time of the last completed run) minus a lookback for
 * late rows bounds what is scanned. The watermark only moves after a run completes, and every
 * write is an idempotent upsert, so a crash mid-run is repaired by the next run. Runs never
 * overlap (advisory lock). Days of the daily rules are UTC days.
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import type { Database } from "../../db/types";
import { ACTION_TYPES, ACTION_TYPE_NAMES, defaultOverrides } from "../domain/action-types";
import {
  evaluateFailureSpike,
  evaluateOutOfRange,
  evaluateOverrideMismatch,
  evaluateUnexpectedRoute,
  evaluateUnregisteredType,
  evaluateUserSpike,
  FAILURE_SPIKE,
  isFixedCostType,
  rangesToCheck,
  RULE_NAMES,
  USER_SPIKE,
  type Finding,
  type RuleName,
} from "../domain/outlier-rules";
import type { UsageCall } from "../domain/outlier-rules/types";
import { usageFacts } from "./rollup.server";

type Db = Kysely<Database> | Transaction<Database>;

const STATE_KEY = "outlier_job";
/** pg_try_advisory_lock key: one detection run at a time across the server and the CLI. */
const LOCK_KEY = 73_310_401;
const DAY_MS = 86_400_000;
/** Late rows up to this old (by created_at) are still seen by incremental runs. */
export const LOOKBACK_MS = 3 * DAY_MS;
const UPSERT_BATCH = 2_000;

export interface DetectOptions {
  /** Scan from this instant instead of the watermark. */
  since?: Date;
  /** Scan everything (ignores the watermark). */
  full?: boolean;
  now?: Date;
  log?: (line: string) => void;
}

export interface RuleReport {
  candidates: number;
  inserted: number;
  updated: number;
  ms: number;
}

export interface DetectReport {
  skipped: boolean;
  from: string | null;
  watermark: string;
  rules: Record<RuleName, RuleReport>;
  inserted: number;
  ms: number;
}

interface JobState {
  watermark?: string;
}

async function readState(db: Db): Promise<JobState> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", STATE_KEY).executeTakeFirst();
  return (row?.value as JobState | undefined) ?? {};
}

async function writeState(db: Db, state: JobState & Record<string, unknown>): Promise<void> {
  const value = JSON.stringify(state);
  await db
    .insertInto("settings")
    .values({ key: STATE_KEY, value })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: new Date() }))
    .execute();
}

/** Where the next incremental run starts: null means "from the first row". */
export async function detectionStart(db: Db, options: Pick<DetectOptions, "since" | "full">): Promise<Date | null> {
  if (options.full) return null;
  if (options.since) return options.since;
  const { watermark } = await readState(db);
  return watermark ? new Date(new Date(watermark).getTime() - LOOKBACK_MS) : null;
}

function startOfUtcDay(instant: Date): Date {
  return new Date(Math.floor(instant.getTime() / DAY_MS) * DAY_MS);
}

/** Upserts findings; a finding seen again refreshes its numbers (late rows change daily counts). */
export async function upsertFindings(db: Db, findings: readonly Finding[]): Promise<{ inserted: number; updated: number }> {
  let inserted = 0;
  let updated = 0;
  for (let i = 0; i < findings.length; i += UPSERT_BATCH) {
    const rows = findings.slice(i, i + UPSERT_BATCH).map((f) => ({
      rule: f.rule,
      dedupe_key: f.dedupeKey,
      action_type: f.actionType,
      route: f.route,
      user_id: f.userId,
      usage_id: f.usageId,
      day: f.day,
      observed: f.observed,
      expected_low: f.expectedLow,
      expected_high: f.expectedHigh,
      message: f.message,
      details: f.details,
      occurred_at: f.occurredAt.toISOString(),
    }));
    const result = await sql<{ inserted: boolean }>`
      INSERT INTO tokenboard.outlier_flags
        (rule, dedupe_key, action_type, route, user_id, usage_id, day, observed, expected_low, expected_high, message, details, occurred_at)
      SELECT rule, dedupe_key, action_type, route, user_id, usage_id, day, observed, expected_low, expected_high, message, details, occurred_at
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
        rule text, dedupe_key text, action_type text, route text, user_id uuid, usage_id uuid, day date,
        observed numeric, expected_low numeric, expected_high numeric, message text, details jsonb, occurred_at timestamptz)
      ON CONFLICT (dedupe_key) DO UPDATE
        SET observed = EXCLUDED.observed, expected_low = EXCLUDED.expected_low, expected_high = EXCLUDED.expected_high,
            message = EXCLUDED.message, details = EXCLUDED.details
        WHERE outlier_flags.message IS DISTINCT FROM EXCLUDED.message
      RETURNING (xmax = 0) AS inserted`.execute(db);
    for (const row of result.rows) {
      if (row.inserted) inserted += 1;
      else updated += 1;
    }
  }
  return { inserted, updated };
}

/** Far enough ahead that rows with a skewed future clock are still read. */
const FAR_FUTURE = new Date(Date.UTC(2200, 0, 1));

/**
 * Exact per (UTC day, type, route, model) usage facts from `start`: the rollups plus their
 * queue tail (app/models/rollup.server.ts), so the daily rules never scan token_usage.
 */
function dailyFacts(start: Date | null) {
  return sql`
    SELECT (f.bucket AT TIME ZONE 'UTC')::date AS day, f.bucket, f.action_type, f.route, f.calls, f.failures, f.tokens,
           f.below_range, f.above_range, f.max_tokens
    FROM (${usageFacts({ start: start ? startOfUtcDay(start) : new Date(0), end: FAR_FUTURE })}) f`;
}

const dayStart = (day: RawBuilder<unknown>) => sql`(${day}::timestamp AT TIME ZONE 'UTC')`;
const dayEnd = (day: RawBuilder<unknown>) => sql`((${day} + 1)::timestamp AT TIME ZONE 'UTC')`;

type CallRow = UsageCall;

const callColumns = sql`u.id AS "usageId", u.user_id AS "userId", u.action_type AS "actionType", u.route, u.tokens_used AS tokens, u.created_at AS "createdAt"`;

/**
 * Out-of-range calls. The rollups count calls below and above the registry range per day and
 * type, so only (type, day) pairs with such calls are read from token_usage, by index.
 */
async function outOfRangeCandidates(db: Db, from: Date | null, overridden: ReadonlySet<string>): Promise<CallRow[]> {
  const ranges = rangesToCheck(overridden);
  if (!ranges.length) return [];
  const days = await sql<TypeDay>`
    SELECT f.action_type AS "actionType", to_char(f.day, 'YYYY-MM-DD') AS day
    FROM (${dailyFacts(from)}) f
    WHERE f.action_type = ANY(${ranges.map((r) => r.actionType)}::text[])
    GROUP BY f.action_type, f.day HAVING sum(f.below_range) + sum(f.above_range) > 0`.execute(db);
  return callsOnTypeDays(db, days.rows, from, (pairs) => sql<CallRow>`
    SELECT ${callColumns}
    FROM token_usage u
    JOIN unnest(${ranges.map((r) => r.actionType)}::text[], ${ranges.map((r) => r.min)}::int[], ${ranges.map((r) => r.max)}::int[]) AS r(action_type, min, max)
      ON r.action_type = u.action_type
    WHERE (${pairs}) AND u.success AND (u.tokens_used < r.min OR u.tokens_used > r.max)`);
}

type TypeDay = { actionType: string; day: string };
const TYPE_DAYS_PER_QUERY = 200;

/**
 * Reads the calls of a few (type, day) pairs from token_usage. The pairs go into the SQL as
 * constants (an OR of index ranges on (action_type, created_at)): with them the planner picks
 * the type index; joined from a subquery it estimated blindly and scanned whole days.
 */
async function callsOnTypeDays<R>(
  db: Db,
  days: readonly TypeDay[],
  from: Date | null,
  query: (pairs: RawBuilder<unknown>) => RawBuilder<R>,
): Promise<R[]> {
  const rows: R[] = [];
  for (let i = 0; i < days.length; i += TYPE_DAYS_PER_QUERY) {
    const pairs = sql.join(
      days.slice(i, i + TYPE_DAYS_PER_QUERY).map((d) => {
        const start = new Date(`${d.day}T00:00:00Z`);
        const lower = from && from > start ? from : start;
        return sql`(u.action_type = ${d.actionType} AND u.created_at >= ${lower} AND u.created_at < ${new Date(start.getTime() + DAY_MS)})`;
      }),
      sql` OR `,
    );
    rows.push(...(await query(pairs).execute(db)).rows);
  }
  return rows;
}

/**
 * Calls of fixed-cost types whose tokens differ from the override in effect when they were
 * made: periods come from override_history, and a type whose override never changed through
 * tokenboard uses its current value throughout. A day is read from token_usage only when its
 * rollup shows calls of differing sizes (tokens ≠ calls × max) or a size other than an
 * override value in effect that day.
 */
async function overrideMismatchCandidates(
  db: Db,
  from: Date | null,
  overrides: readonly { action_type: string; token_value: number }[],
): Promise<(CallRow & { override: number })[]> {
  const fixed = overrides.filter((o) => isFixedCostType(o.action_type));
  if (!fixed.length) return [];
  const types = fixed.map((o) => o.action_type);
  const defaults = defaultOverrides();
  const periodsSql = sql`
    changes AS (
      SELECT h.action_type, h.old_value, h.new_value, h.changed_at,
             lead(h.changed_at) OVER w AS next_at, row_number() OVER w AS n
      FROM override_history h
      WHERE h.action_type = ANY(${types}::text[])
      WINDOW w AS (PARTITION BY h.action_type ORDER BY h.changed_at, h.id)
    ), periods (action_type, value, valid_from, valid_to) AS (
      -- Before the first recorded change: its old value, or, when the override was created
      -- then (old value NULL), the registry's default for types that are fixed-cost by design.
      SELECT c.action_type, COALESCE(c.old_value, d.value), '-infinity'::timestamptz, c.changed_at
      FROM changes c
      LEFT JOIN unnest(${defaults.map((d) => d.actionType)}::text[], ${defaults.map((d) => d.tokenValue)}::int[]) AS d(action_type, value)
        ON d.action_type = c.action_type
      WHERE c.n = 1
      UNION ALL
      SELECT action_type, new_value, changed_at, COALESCE(next_at, 'infinity') FROM changes
      UNION ALL
      SELECT o.action_type, o.token_value, '-infinity', 'infinity'
      FROM unnest(${types}::text[], ${fixed.map((o) => o.token_value)}::int[]) AS o(action_type, token_value)
      WHERE NOT EXISTS (SELECT 1 FROM changes c WHERE c.action_type = o.action_type)
    )`;
  const daysSql = sql`
    , groups AS (
      SELECT f.action_type, f.day, sum(f.calls) AS calls, sum(f.tokens) AS tokens, max(f.max_tokens) AS max_tokens
      FROM (${dailyFacts(from)}) f WHERE f.action_type = ANY(${types}::text[])
      GROUP BY 1, 2
    )
    SELECT g.action_type AS "actionType", to_char(g.day, 'YYYY-MM-DD') AS day FROM groups g
    WHERE g.max_tokens IS NULL OR g.tokens <> g.calls * g.max_tokens
       OR EXISTS (SELECT 1 FROM periods p WHERE p.action_type = g.action_type AND p.valid_from < ${dayEnd(sql`g.day`)}
                    AND p.valid_to > ${dayStart(sql`g.day`)} AND p.value IS DISTINCT FROM g.max_tokens)`;
  const days = await sql<TypeDay>`WITH ${periodsSql} ${daysSql}`.execute(db);
  return callsOnTypeDays(db, days.rows, from, (pairs) => sql<CallRow & { override: number }>`
    WITH ${periodsSql}
    SELECT ${callColumns}, p.value AS override
    FROM token_usage u
    JOIN periods p ON p.action_type = u.action_type AND u.created_at >= p.valid_from AND u.created_at < p.valid_to
    WHERE (${pairs}) AND u.success AND p.value IS NOT NULL AND u.tokens_used <> p.value`);
}

type TypeDayGroup = { actionType: string; day: string; calls: number; tokens: number; firstAt: Date };

async function unexpectedRouteCandidates(db: Db, from: Date | null) {
  const pairs = ACTION_TYPES.flatMap((t) => t.routes.map((route) => ({ type: t.name, route })));
  const result = await sql<TypeDayGroup & { route: string }>`
    SELECT f.action_type AS "actionType", f.route, to_char(f.day, 'YYYY-MM-DD') AS day, sum(f.calls)::bigint AS calls,
           sum(f.tokens)::bigint AS tokens, min(f.bucket) AS "firstAt"
    FROM (${dailyFacts(from)}) f
    LEFT JOIN unnest(${pairs.map((p) => p.type)}::text[], ${pairs.map((p) => p.route)}::text[]) AS allowed(action_type, route)
      ON allowed.action_type = f.action_type AND allowed.route = f.route
    WHERE f.route IS NOT NULL AND allowed.action_type IS NULL AND f.action_type = ANY(${ACTION_TYPE_NAMES}::text[])
    GROUP BY f.action_type, f.route, f.day
    HAVING sum(f.calls) > 0`.execute(db);
  return result.rows;
}

async function unregisteredTypeCandidates(db: Db, from: Date | null) {
  const result = await sql<TypeDayGroup>`
    SELECT f.action_type AS "actionType", to_char(f.day, 'YYYY-MM-DD') AS day, sum(f.calls)::bigint AS calls,
           sum(f.tokens)::bigint AS tokens, min(f.bucket) AS "firstAt"
    FROM (${dailyFacts(from)}) f
    WHERE f.action_type <> ALL(${ACTION_TYPE_NAMES}::text[])
    GROUP BY f.action_type, f.day
    HAVING sum(f.calls) > 0`.execute(db);
  return result.rows;
}

/**
 * User-days above the absolute floor, each with the user's daily totals on their active days
 * in the previous baselineDays (the window frame excludes the day itself), from the per-user
 * day rollup plus its queue tail; the day's largest call is then read by index for the few
 * days that can still fire.
 */
async function userSpikeCandidates(db: Db, from: Date | null) {
  const baselineFrom = from ? new Date(startOfUtcDay(from).getTime() - USER_SPIKE.baselineDays * DAY_MS) : new Date(0);
  const result = await sql<{ userId: string; day: string; tokens: number; calls: number; largestCall: number; baseline: number[]; firstAt: Date }>`
    WITH daily AS (
      SELECT user_id, day, sum(tokens)::bigint AS tokens, sum(calls)::bigint AS calls FROM (
        SELECT t.user_id, t.day, t.tokens, t.calls FROM tokenboard.user_usage_day_total t WHERE t.day >= ${baselineFrom}::date
        UNION ALL
        SELECT q.user_id, (q.created_at AT TIME ZONE 'UTC')::date, q.sign * q.tokens_used, q.sign
        FROM tokenboard.usage_rollup_queue q WHERE q.created_at >= ${baselineFrom}
      ) x
      GROUP BY 1, 2
    ), windowed AS (
      SELECT d.*, array_agg(d.tokens) FILTER (WHERE d.calls > 0) OVER (
               PARTITION BY d.user_id ORDER BY d.day
               RANGE BETWEEN ${`${USER_SPIKE.baselineDays} days`}::interval PRECEDING AND '1 day'::interval PRECEDING) AS baseline
      FROM daily d
    ), above_floor AS (
      SELECT w.*,
             -- The day's largest call is at least the mean call of any of its types, which the
             -- per-user-and-type rollup gives without touching token_usage.
             (SELECT max(t.tokens / NULLIF(t.calls, 0)) FROM tokenboard.user_usage_day t WHERE t.day = w.day AND t.user_id = w.user_id) AS largest_call_floor
      FROM windowed w
      -- The rule's necessary conditions, cheapest first, so that few days reach the lookups.
      WHERE w.tokens > ${USER_SPIKE.floorTokens} AND cardinality(w.baseline) >= ${USER_SPIKE.minBaselineDays}
        ${from ? sql`AND w.day >= ${startOfUtcDay(from)}::date` : sql``}
        AND w.tokens > ${USER_SPIKE.multiple} * (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY b) FROM unnest(w.baseline) b)
    ), candidates AS (
      SELECT * FROM above_floor WHERE tokens - COALESCE(largest_call_floor, 0) > ${USER_SPIKE.floorTokens}
    )
    SELECT c.user_id AS "userId", to_char(c.day, 'YYYY-MM-DD') AS day, c.tokens, c.calls, c.baseline,
           calls_of_day.largest AS "largestCall", calls_of_day.first_at AS "firstAt"
    FROM candidates c
    CROSS JOIN LATERAL (
      SELECT max(u.tokens_used) AS largest, min(u.created_at) AS first_at FROM token_usage u
      WHERE u.user_id = c.user_id AND u.created_at >= ${dayStart(sql`c.day`)} AND u.created_at < ${dayEnd(sql`c.day`)}
    ) calls_of_day`.execute(db);
  return result.rows.map((r) => ({ ...r, baseline: r.baseline.map(Number), largestCall: Number(r.largestCall ?? 0), firstAt: r.firstAt ?? dayStartDate(r.day) }));
}

function dayStartDate(day: string): Date {
  return new Date(`${day}T00:00:00Z`);
}

/** Per type × UTC day: calls and failures, with the sums of the previous baselineDays days. */
async function failureSpikeCandidates(db: Db, from: Date | null) {
  const baselineFrom = from ? new Date(startOfUtcDay(from).getTime() - FAILURE_SPIKE.baselineDays * DAY_MS) : null;
  const frame = sql`(PARTITION BY d.action_type ORDER BY d.day RANGE BETWEEN ${`${FAILURE_SPIKE.baselineDays} days`}::interval PRECEDING AND '1 day'::interval PRECEDING)`;
  const result = await sql<{ actionType: string; day: string; calls: number; failures: number; baselineCalls: number; baselineFailures: number; firstAt: Date }>`
    WITH daily AS (
      SELECT f.action_type, f.day, sum(f.calls)::bigint AS calls, sum(f.failures)::bigint AS failures, min(f.bucket) AS first_at
      FROM (${dailyFacts(baselineFrom)}) f
      GROUP BY 1, 2
    ), windowed AS (
      SELECT d.*, COALESCE(sum(d.calls) OVER ${frame}, 0)::bigint AS baseline_calls,
             COALESCE(sum(d.failures) OVER ${frame}, 0)::bigint AS baseline_failures
      FROM daily d
    )
    SELECT action_type AS "actionType", to_char(day, 'YYYY-MM-DD') AS day, calls, failures,
           baseline_calls AS "baselineCalls", baseline_failures AS "baselineFailures", first_at AS "firstAt"
    FROM windowed
    WHERE calls >= ${FAILURE_SPIKE.minCalls} AND failures > 0
      ${from ? sql`AND day >= ${startOfUtcDay(from)}::date` : sql``}`.execute(db);
  return result.rows;
}

function emptyReport(): Record<RuleName, RuleReport> {
  return Object.fromEntries(RULE_NAMES.map((r) => [r, { candidates: 0, inserted: 0, updated: 0, ms: 0 }])) as Record<RuleName, RuleReport>;
}

async function runRules(db: Db, from: Date | null, log: (line: string) => void): Promise<Record<RuleName, RuleReport>> {
  const report = emptyReport();
  const record = async <C>(rule: RuleName, candidates: () => Promise<C[]>, evaluate: (c: C) => Finding | null) => {
    const started = Date.now();
    const found = await candidates();
    const findings = found.map(evaluate).filter((f): f is Finding => f !== null);
    const written = await upsertFindings(db, findings);
    const r = report[rule];
    r.candidates += found.length;
    r.inserted += written.inserted;
    r.updated += written.updated;
    r.ms += Date.now() - started;
  };

  const overrides = await db.selectFrom("ai_action_token_overrides").select(["action_type", "token_value"]).execute();
  const overridden = new Set(overrides.map((o) => o.action_type));
  await record("out_of_range", () => outOfRangeCandidates(db, from, overridden), evaluateOutOfRange);
  await record("override_mismatch", () => overrideMismatchCandidates(db, from, overrides), evaluateOverrideMismatch);
  await record("unexpected_route", () => unexpectedRouteCandidates(db, from), evaluateUnexpectedRoute);
  await record("unregistered_type", () => unregisteredTypeCandidates(db, from), evaluateUnregisteredType);
  await record("user_spike", () => userSpikeCandidates(db, from), (c) => evaluateUserSpike(c));
  await record("failure_spike", () => failureSpikeCandidates(db, from), (c) => evaluateFailureSpike(c));
  for (const rule of RULE_NAMES) {
    const r = report[rule];
    log(`  ${rule}: ${r.candidates} candidates, ${r.inserted} new, ${r.updated} updated (${r.ms} ms)`);
  }
  return report;
}

/** One detection run. Returns `skipped: true` when another run holds the lock. */
export async function detectOutliers(db: Kysely<Database>, options: DetectOptions = {}): Promise<DetectReport> {
  const started = Date.now();
  const now = options.now ?? new Date();
  const log = options.log ?? (() => undefined);
  return db.connection().execute(async (conn) => {
    const lock = await sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS locked`.execute(conn);
    if (!lock.rows[0]?.locked) {
      return { skipped: true, from: null, watermark: now.toISOString(), rules: emptyReport(), inserted: 0, ms: Date.now() - started };
    }
    try {
      // The daily rules sort and hash up to a million user-days on large data sets; with the
      // default 4 MB they spill to disk. Session-level on this pinned connection, reset below.
      await sql`SET work_mem = '128MB'`.execute(conn);
      const from = await detectionStart(conn, options);
      log(`detecting outliers in rows created ${from ? `since ${from.toISOString()}` : "at any time"}`);
      const rules = await runRules(conn, from, log);
      const inserted = RULE_NAMES.reduce((n, r) => n + rules[r].inserted, 0);
      const ms = Date.now() - started;
      await writeState(conn, { watermark: now.toISOString(), lastRun: { from: from?.toISOString() ?? null, inserted, ms } });
      return { skipped: false, from: from?.toISOString() ?? null, watermark: now.toISOString(), rules, inserted, ms };
    } finally {
      await sql`RESET work_mem`.execute(conn);
      await sql`SELECT pg_advisory_unlock(${LOCK_KEY})`.execute(conn);
    }
  });
}

export function summarizeDetection(report: DetectReport): string {
  if (report.skipped) return "skipped: another detection run is in progress";
  const parts = RULE_NAMES.filter((r) => report.rules[r].inserted > 0).map((r) => `${r} ${report.rules[r].inserted}`);
  return `${report.inserted} new flags${parts.length ? ` (${parts.join(", ")})` : ""}`;
}
