/**
 * The outlier detection job. SQL scans token_usage and returns candidates (rows or daily
 * aggregates that could be outliers, already narrowed by the cheap part of each rule); the
 * pure rule modules in app/domain/outlier-rules decide and describe; findings are upserted
 * set-based into tokenboard.outlier_flags, keyed by dedupe_key.
 *
 * Incremental: a watermark (the start time of the last completed run) minus a lookback for
 * late rows bounds what is scanned. The watermark only moves after a run completes, and every
 * write is an idempotent upsert, so a crash mid-run is repaired by the next run. Runs never
 * overlap (advisory lock). Days of the daily rules are UTC days.
 */
import { sql, type Kysely, type Transaction } from "kysely";
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

type Db = Kysely<Database> | Transaction<Database>;

const STATE_KEY = "outlier_job";
/** pg_try_advisory_lock key: one detection run at a time across the server and the CLI. */
const LOCK_KEY = 73_310_401;
const DAY_MS = 86_400_000;
/** Late rows up to this old (by created_at) are still seen by incremental runs. */
export const LOOKBACK_MS = 3 * DAY_MS;
/** Per-call rules read the window in slices so memory stays bounded on a full run. */
const SLICE_MS = 7 * DAY_MS;
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

/** Slices [from, last row] into SLICE_MS pieces; an empty window yields nothing. */
async function timeSlices(db: Db, from: Date | null): Promise<{ start: Date; end: Date }[]> {
  const bounds = await sql<{ first: Date | null; last: Date | null }>`
    SELECT min(created_at) AS first, max(created_at) AS last FROM token_usage
    WHERE ${from ? sql`created_at >= ${from}` : sql`true`}`.execute(db);
  const { first, last } = bounds.rows[0] ?? { first: null, last: null };
  if (!first || !last) return [];
  const slices: { start: Date; end: Date }[] = [];
  for (let t = first.getTime(); t <= last.getTime(); t += SLICE_MS) {
    slices.push({ start: new Date(t), end: new Date(Math.min(t + SLICE_MS, last.getTime() + 1)) });
  }
  return slices;
}

interface CallRow {
  usageId: string;
  userId: string;
  actionType: string;
  route: string | null;
  tokens: number;
  createdAt: Date;
}

async function outOfRangeCandidates(db: Db, slice: { start: Date; end: Date }, overridden: ReadonlySet<string>): Promise<CallRow[]> {
  const ranges = rangesToCheck(overridden);
  if (!ranges.length) return [];
  const result = await sql<CallRow>`
    SELECT u.id AS "usageId", u.user_id AS "userId", u.action_type AS "actionType", u.route, u.tokens_used AS tokens, u.created_at AS "createdAt"
    FROM token_usage u
    JOIN unnest(${ranges.map((r) => r.actionType)}::text[], ${ranges.map((r) => r.min)}::int[], ${ranges.map((r) => r.max)}::int[]) AS r(action_type, min, max)
      ON r.action_type = u.action_type
    WHERE u.created_at >= ${slice.start} AND u.created_at < ${slice.end}
      AND u.success AND (u.tokens_used < r.min OR u.tokens_used > r.max)`.execute(db);
  return result.rows;
}

/**
 * Calls of fixed-cost types whose tokens differ from the override in effect when they were
 * made: periods come from override_history, and a type whose override never changed through
 * tokenboard uses its current value throughout.
 */
async function overrideMismatchCandidates(
  db: Db,
  slice: { start: Date; end: Date },
  overrides: readonly { action_type: string; token_value: number }[],
): Promise<(CallRow & { override: number })[]> {
  const fixed = overrides.filter((o) => isFixedCostType(o.action_type));
  if (!fixed.length) return [];
  const types = fixed.map((o) => o.action_type);
  const defaults = defaultOverrides();
  const result = await sql<CallRow & { override: number }>`
    WITH changes AS (
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
    )
    SELECT u.id AS "usageId", u.user_id AS "userId", u.action_type AS "actionType", u.route, u.tokens_used AS tokens,
           u.created_at AS "createdAt", p.value AS override
    FROM token_usage u
    JOIN periods p ON p.action_type = u.action_type AND u.created_at >= p.valid_from AND u.created_at < p.valid_to
    WHERE u.created_at >= ${slice.start} AND u.created_at < ${slice.end}
      AND u.success AND p.value IS NOT NULL AND u.tokens_used <> p.value`.execute(db);
  return result.rows;
}

const utcDaySql = sql`to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`;

function windowFilter(from: Date | null) {
  return from ? sql`u.created_at >= ${startOfUtcDay(from)}` : sql`true`;
}

async function unexpectedRouteCandidates(db: Db, from: Date | null) {
  const pairs = ACTION_TYPES.flatMap((t) => t.routes.map((route) => ({ type: t.name, route })));
  const result = await sql<{ actionType: string; route: string; day: string; calls: number; tokens: number; users: number; firstAt: Date }>`
    SELECT u.action_type AS "actionType", u.route, ${utcDaySql} AS day, count(*)::int AS calls,
           sum(u.tokens_used)::bigint AS tokens, count(DISTINCT u.user_id)::int AS users, min(u.created_at) AS "firstAt"
    FROM token_usage u
    LEFT JOIN unnest(${pairs.map((p) => p.type)}::text[], ${pairs.map((p) => p.route)}::text[]) AS allowed(action_type, route)
      ON allowed.action_type = u.action_type AND allowed.route = u.route
    WHERE ${windowFilter(from)} AND u.route IS NOT NULL AND allowed.action_type IS NULL
      AND u.action_type = ANY(${ACTION_TYPE_NAMES}::text[])
    GROUP BY 1, 2, 3`.execute(db);
  return result.rows;
}

async function unregisteredTypeCandidates(db: Db, from: Date | null) {
  const result = await sql<{ actionType: string; day: string; calls: number; tokens: number; users: number; firstAt: Date }>`
    SELECT u.action_type AS "actionType", ${utcDaySql} AS day, count(*)::int AS calls,
           sum(u.tokens_used)::bigint AS tokens, count(DISTINCT u.user_id)::int AS users, min(u.created_at) AS "firstAt"
    FROM token_usage u
    WHERE ${windowFilter(from)} AND u.action_type <> ALL(${ACTION_TYPE_NAMES}::text[])
    GROUP BY 1, 2`.execute(db);
  return result.rows;
}

/**
 * User-days above the absolute floor, each with the user's daily totals on their active days
 * in the previous baselineDays (the window frame excludes the day itself).
 */
async function userSpikeCandidates(db: Db, from: Date | null) {
  const baselineFrom = from ? new Date(startOfUtcDay(from).getTime() - USER_SPIKE.baselineDays * DAY_MS) : null;
  const result = await sql<{ userId: string; day: string; tokens: number; calls: number; largestCall: number; baseline: number[]; firstAt: Date }>`
    WITH daily AS (
      SELECT u.user_id, (u.created_at AT TIME ZONE 'UTC')::date AS day, sum(u.tokens_used)::bigint AS tokens,
             count(*)::int AS calls, max(u.tokens_used) AS largest_call, min(u.created_at) AS first_at
      FROM token_usage u
      WHERE ${baselineFrom ? sql`u.created_at >= ${baselineFrom}` : sql`true`}
      GROUP BY 1, 2
    ), windowed AS (
      SELECT d.*, array_agg(d.tokens) OVER (
               PARTITION BY d.user_id ORDER BY d.day
               RANGE BETWEEN ${`${USER_SPIKE.baselineDays} days`}::interval PRECEDING AND '1 day'::interval PRECEDING) AS baseline
      FROM daily d
    )
    SELECT user_id AS "userId", to_char(day, 'YYYY-MM-DD') AS day, tokens, calls, largest_call AS "largestCall", baseline, first_at AS "firstAt"
    FROM windowed
    WHERE tokens - largest_call > ${USER_SPIKE.floorTokens}
      AND cardinality(baseline) >= ${USER_SPIKE.minBaselineDays}
      ${from ? sql`AND day >= ${startOfUtcDay(from)}::date` : sql``}`.execute(db);
  return result.rows.map((r) => ({ ...r, baseline: r.baseline.map(Number) }));
}

/** Per type × UTC day: calls and failures, with the sums of the previous baselineDays days. */
async function failureSpikeCandidates(db: Db, from: Date | null) {
  const baselineFrom = from ? new Date(startOfUtcDay(from).getTime() - FAILURE_SPIKE.baselineDays * DAY_MS) : null;
  const frame = sql`(PARTITION BY d.action_type ORDER BY d.day RANGE BETWEEN ${`${FAILURE_SPIKE.baselineDays} days`}::interval PRECEDING AND '1 day'::interval PRECEDING)`;
  const result = await sql<{ actionType: string; day: string; calls: number; failures: number; baselineCalls: number; baselineFailures: number; firstAt: Date }>`
    WITH daily AS (
      SELECT u.action_type, (u.created_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS calls,
             count(*) FILTER (WHERE NOT u.success)::int AS failures, min(u.created_at) AS first_at
      FROM token_usage u
      WHERE ${baselineFrom ? sql`u.created_at >= ${baselineFrom}` : sql`true`}
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
  for (const slice of await timeSlices(db, from)) {
    await record("out_of_range", () => outOfRangeCandidates(db, slice, overridden), evaluateOutOfRange);
    await record("override_mismatch", () => overrideMismatchCandidates(db, slice, overrides), evaluateOverrideMismatch);
  }
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
      const from = await detectionStart(conn, options);
      log(`detecting outliers in rows created ${from ? `since ${from.toISOString()}` : "at any time"}`);
      const rules = await runRules(conn, from, log);
      const inserted = RULE_NAMES.reduce((n, r) => n + rules[r].inserted, 0);
      const ms = Date.now() - started;
      await writeState(conn, { watermark: now.toISOString(), lastRun: { from: from?.toISOString() ?? null, inserted, ms } });
      return { skipped: false, from: from?.toISOString() ?? null, watermark: now.toISOString(), rules, inserted, ms };
    } finally {
      await sql`SELECT pg_advisory_unlock(${LOCK_KEY})`.execute(conn);
    }
  });
}

export function summarizeDetection(report: DetectReport): string {
  if (report.skipped) return "skipped: another detection run is in progress";
  const parts = RULE_NAMES.filter((r) => report.rules[r].inserted > 0).map((r) => `${r} ${report.rules[r].inserted}`);
  return `${report.inserted} new flags${parts.length ? ` (${parts.join(", ")})` : ""}`;
}
