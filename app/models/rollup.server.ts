/**
 * Incremental usage rollups: consuming the queue the token_usage trigger fills, the full
 * rebuild, and the "facts" sources that pages read (rollups + the queue tail not consumed
 * yet, so a page is exact at the moment it runs). Design and timezone method: docs/rollups.md.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import { DateTime } from "luxon";
import type { Database } from "../../db/types";
import { ACTION_TYPES } from "~/domain/action-types";
import { BINS_PER_OCTAVE } from "~/domain/token-histogram";
import { applyPendingCharges, chargingEnabled, stageChargesSql } from "./charging.server";
import { costCentsSql } from "./cost.server";

/** The per-user rollups (by day and by month, with and without the action type). */
export const USER_ROLLUP_TABLES = ["user_usage_day", "user_usage_day_total", "user_usage_month", "user_usage_month_total"];
/** Every table the rollup statement writes. */
const ROLLUP_TABLES = ["usage_rollup_15m", "usage_rollup_day", "usage_hist_15m", "usage_hist_day", ...USER_ROLLUP_TABLES];

/**
 * The first open day (UTC): the per-user month rollups hold the days before it, the days from it
 * on are read from the day rollups (migration 0018, decision 014). closeUserMonthDays moves it.
 */
export const USER_MONTH_OPEN_FROM_SQL = "(SELECT open_from FROM tokenboard.user_month_horizon)";
const openFrom = sql.raw(USER_MONTH_OPEN_FROM_SQL);

/** Held by whoever writes rollups, so a rebuild and the job never interleave. */
const ROLLUP_LOCK = 7_311_001;
export const DEFAULT_BATCH = 50_000;

/** SQL twin of binOf in app/domain/token-histogram.ts. */
const tokenBinSql = sql<number>`CASE WHEN u.tokens_used <= 0 THEN 0 ELSE floor(ln(u.tokens_used::float8) * ${sql.lit(BINS_PER_OCTAVE)} / ln(2))::int + 1 END`;
const bucketSql = sql`date_bin('15 minutes', u.created_at, timestamptz '2000-01-01 00:00:00+00')`;

/** The registry's expected ranges as a relation, so below/above counts come from one source. */
function expectedRangesSql(): RawBuilder<unknown> {
  const rows = ACTION_TYPES.flatMap((t) => (t.expectedRange ? [sql`(${t.name}::text, ${t.expectedRange.min}::int, ${t.expectedRange.max}::int)`] : []));
  return sql`(VALUES ${sql.join(rows)}) AS r(action_type, min_tokens, max_tokens)`;
}

/**
 * One classified line per source row. `source` yields rows shaped like the queue (QUEUE_COLUMNS:
 * sign, created_at, user_id, action_type, route, model_used, success, tokens_used, …, cost_cents),
 * priced already: queue rows by the trigger that queued them (migration 0017), a rebuild's rows
 * by its source.
 */
function classifiedSql(source: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`
    SELECT u.sign, u.created_at, ${bucketSql} AS bucket, (u.created_at AT TIME ZONE 'UTC')::date AS day,
           u.user_id, u.action_type, u.route, u.model_used AS model, u.success, u.tokens_used,
           COALESCE(u.input_tokens, 0) AS input_tokens, COALESCE(u.output_tokens, 0) AS output_tokens,
           u.cost_cents, ${tokenBinSql} AS bin,
           (u.tokens_used < r.min_tokens) AS below, (u.tokens_used > r.max_tokens) AS above
    FROM (${source}) u
    LEFT JOIN ${expectedRangesSql()} ON r.action_type = u.action_type`;
}

/**
 * A row's cost with its sign (±1). Negating a numeric is cheap; multiplying it by the smallint sign
 * converts and multiplies per row: 100,000 queued rows aggregated by the overview's shared tail took
 * 122–127 ms with `sign * cost_cents`, 73–78 ms with this (10M set, alternated).
 */
const signedCost = sql`CASE WHEN sign > 0 THEN cost_cents ELSE -cost_cents END`;

const measureSums = sql`
  sum(sign)::bigint AS calls,
  COALESCE(sum(sign) FILTER (WHERE NOT success), 0)::bigint AS failures,
  sum(sign * tokens_used)::bigint AS tokens,
  sum(sign * input_tokens)::bigint AS input_tokens,
  sum(sign * output_tokens)::bigint AS output_tokens,
  sum(${signedCost})::numeric AS cost_cents,
  COALESCE(sum(sign) FILTER (WHERE below), 0)::bigint AS below_range,
  COALESCE(sum(sign) FILTER (WHERE above), 0)::bigint AS above_range,
  max(tokens_used) FILTER (WHERE sign > 0) AS max_tokens`;

/** The measures of the per-user rollups (and of a shared queue tail), from classified rows. */
const userMeasureSums = sql`sum(sign)::bigint AS calls, COALESCE(sum(sign) FILTER (WHERE NOT success), 0)::bigint AS failures,
  sum(sign * tokens_used)::bigint AS tokens, sum(${signedCost}) AS cost_cents`;

const reSums = sql`sum(calls)::bigint, sum(failures)::bigint, sum(tokens)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint,
  sum(cost_cents), sum(below_range)::bigint, sum(above_range)::bigint, max(max_tokens)`;

function addMeasures(table: string) {
  const t = sql.raw(table);
  return sql`calls = ${t}.calls + excluded.calls, failures = ${t}.failures + excluded.failures, tokens = ${t}.tokens + excluded.tokens,
    input_tokens = ${t}.input_tokens + excluded.input_tokens, output_tokens = ${t}.output_tokens + excluded.output_tokens,
    cost_cents = ${t}.cost_cents + excluded.cost_cents, below_range = ${t}.below_range + excluded.below_range,
    above_range = ${t}.above_range + excluded.above_range, max_tokens = GREATEST(${t}.max_tokens, excluded.max_tokens)`;
}

const addUserMeasures = sql`calls = t.calls + excluded.calls, failures = t.failures + excluded.failures,
  tokens = t.tokens + excluded.tokens, cost_cents = t.cost_cents + excluded.cost_cents`;

// first_at/last_at only ever widen: a deleted first or last call leaves them stale until --rebuild.
const addUserTypeMeasures = sql`${addUserMeasures}, below_range = t.below_range + excluded.below_range,
  above_range = t.above_range + excluded.above_range, first_at = LEAST(t.first_at, excluded.first_at),
  last_at = GREATEST(t.last_at, excluded.last_at)`;

type Upsert = (conflict: RawBuilder<unknown>, set: RawBuilder<unknown>) => RawBuilder<unknown>;
const addInto: Upsert = (conflict, set) => sql`ON CONFLICT ${conflict} DO UPDATE SET ${set}`;

/** Adds per-user day rows (`days`: day, user_id, action_type and the measures) where `where` holds into user_usage_month. */
function monthInsert(days: RawBuilder<unknown>, where: RawBuilder<unknown>, upsert: Upsert = addInto): RawBuilder<unknown> {
  return sql`
    INSERT INTO tokenboard.user_usage_month AS t (month, user_id, action_type, calls, failures, tokens, cost_cents, below_range, above_range, first_at, last_at)
    SELECT date_trunc('month', day::timestamp)::date, user_id, action_type, sum(calls), sum(failures), sum(tokens), sum(cost_cents),
           sum(below_range), sum(above_range), min(first_at), max(last_at)
    FROM ${days} WHERE ${where} GROUP BY 1, user_id, action_type ORDER BY 1, user_id, action_type
    ${upsert(sql`(month, user_id, action_type)`, addUserTypeMeasures)}`;
}

/** The same for user_usage_month_total, from rows with day, user_id and the four user measures. */
function monthTotalInsert(days: RawBuilder<unknown>, where: RawBuilder<unknown>, upsert: Upsert = addInto): RawBuilder<unknown> {
  return sql`
    INSERT INTO tokenboard.user_usage_month_total AS t (month, user_id, calls, failures, tokens, cost_cents)
    SELECT date_trunc('month', day::timestamp)::date, user_id, sum(calls), sum(failures), sum(tokens), sum(cost_cents)
    FROM ${days} WHERE ${where} GROUP BY 1, user_id ORDER BY 1, user_id
    ${upsert(sql`(month, user_id)`, addUserMeasures)}`;
}

/**
 * One statement that reads `source` once and adds it into every rollup table. Being one
 * statement, it is atomic with whatever produced `source` (the queue DELETE … RETURNING).
 */
function rollupStatement(source: RawBuilder<unknown>, options: { fresh?: boolean; charge?: boolean } = {}): RawBuilder<{ rows: number; removed: unknown[] | null }> {
  // Into empty tables (a rebuild) plain inserts do; ON CONFLICT's speculative insertion costs more.
  const upsert: Upsert = (conflict, set) => (options.fresh ? sql`` : addInto(conflict, set));
  return sql<{ rows: number; removed: unknown[] | null }>`
    WITH src AS MATERIALIZED (${source}),
    ${options.charge ? sql`${stageChargesSql()},` : sql``}
    classified AS MATERIALIZED (${classifiedSql(sql`SELECT * FROM src`)}),
    fine AS MATERIALIZED (
      SELECT bucket, action_type, route, model, bin, ${measureSums}
      FROM classified GROUP BY bucket, action_type, route, model, bin
    ),
    r15 AS (
      INSERT INTO tokenboard.usage_rollup_15m AS t (bucket, action_type, route, model, calls, failures, tokens, input_tokens, output_tokens, cost_cents, below_range, above_range, max_tokens)
      SELECT bucket, action_type, route, model, ${reSums} FROM fine GROUP BY bucket, action_type, route, model
      ${upsert(sql`(bucket, action_type, route, model)`, addMeasures("t"))}
    ),
    rday AS (
      INSERT INTO tokenboard.usage_rollup_day AS t (day, action_type, route, model, calls, failures, tokens, input_tokens, output_tokens, cost_cents, below_range, above_range, max_tokens)
      SELECT (bucket AT TIME ZONE 'UTC')::date, action_type, route, model, ${reSums} FROM fine GROUP BY 1, action_type, route, model
      ${upsert(sql`(day, action_type, route, model)`, addMeasures("t"))}
    ),
    h15 AS (
      INSERT INTO tokenboard.usage_hist_15m AS t (bucket, action_type, bin, calls)
      SELECT bucket, action_type, bin, sum(calls) FROM fine GROUP BY bucket, action_type, bin
      ${upsert(sql`(bucket, action_type, bin)`, sql`calls = t.calls + excluded.calls`)}
    ),
    hday AS (
      INSERT INTO tokenboard.usage_hist_day AS t (day, action_type, bin, calls)
      SELECT (bucket AT TIME ZONE 'UTC')::date, action_type, bin, sum(calls) FROM fine GROUP BY 1, action_type, bin
      ${upsert(sql`(day, action_type, bin)`, sql`calls = t.calls + excluded.calls`)}
    ),
    -- The per-user rows go in in key order: each upsert probes the primary key, and a batch
    -- touches up to one key per event there; in key order consecutive probes walk neighbouring
    -- index pages instead of random ones (a 50,000-event batch of 10,000 users on the 10M bench
    -- set: 2.2-2.4 s unsorted, 1.7-2.0 s sorted, alternated). docs/rollups.md.
    ud AS MATERIALIZED (
      SELECT day, user_id, action_type, ${userMeasureSums},
             COALESCE(sum(sign) FILTER (WHERE below), 0)::bigint AS below_range, COALESCE(sum(sign) FILTER (WHERE above), 0)::bigint AS above_range,
             min(created_at) FILTER (WHERE sign > 0) AS first_at, max(created_at) FILTER (WHERE sign > 0) AS last_at,
             bool_or(sign < 0) AS removed
      FROM classified GROUP BY day, user_id, action_type
    ),
    uday AS (
      INSERT INTO tokenboard.user_usage_day AS t (day, user_id, action_type, calls, failures, tokens, cost_cents, below_range, above_range, first_at, last_at)
      SELECT day, user_id, action_type, calls, failures, tokens, cost_cents, below_range, above_range, first_at, last_at FROM ud ORDER BY day, user_id, action_type
      ${upsert(sql`(day, user_id, action_type)`, addUserTypeMeasures)}
    ),
    utot AS (
      INSERT INTO tokenboard.user_usage_day_total AS t (day, user_id, calls, failures, tokens, cost_cents)
      SELECT day, user_id, sum(calls), sum(failures), sum(tokens), sum(cost_cents) FROM ud GROUP BY day, user_id ORDER BY day, user_id
      ${upsert(sql`(day, user_id)`, addUserMeasures)}
    ),
    -- The months take the closed days only (late rows, deletions); open days reach them when
    -- they close (closeUserMonthDays).
    umon AS (
      ${monthInsert(sql`ud`, sql`day < ${openFrom}`, upsert)}
    ),
    umtot AS (
      ${monthTotalInsert(sql`ud`, sql`day < ${openFrom}`, upsert)}
    )
    SELECT (SELECT count(*) FROM src)::bigint AS rows,
           (SELECT json_agg(json_build_array(day, user_id, action_type)) FROM ud WHERE removed) AS removed`;
}

/**
 * Removes the per-user rollup rows that deleted usage rows have brought to zero, among the keys
 * a batch subtracted from (`removed`: [day, user_id, action_type] triples). They add nothing to
 * any sum, but users whose usage was deleted (say, on request) would otherwise stay in every
 * per-user scan. Runs after rollupStatement in its transaction, so it sees the new sums; a
 * measure can only be 0 on every column when no row is left (calls counts the rows).
 */
function pruneEmptyUserRows(removed: unknown): RawBuilder<unknown> {
  const zero = (t: string) => sql.raw(`${t}.calls = 0 AND ${t}.failures = 0 AND ${t}.tokens = 0 AND ${t}.cost_cents = 0`);
  return sql`
    WITH k AS (
      SELECT (e->>0)::date AS day, (e->>1)::uuid AS user_id, e->>2 AS action_type FROM json_array_elements(${JSON.stringify(removed)}::json) e
    ),
    d1 AS (
      DELETE FROM tokenboard.user_usage_day t USING k
      WHERE t.day = k.day AND t.user_id = k.user_id AND t.action_type = k.action_type AND ${zero("t")}
    ),
    d2 AS (
      DELETE FROM tokenboard.user_usage_day_total t USING (SELECT DISTINCT day, user_id FROM k) k
      WHERE t.day = k.day AND t.user_id = k.user_id AND ${zero("t")}
    ),
    d3 AS (
      DELETE FROM tokenboard.user_usage_month t USING (SELECT DISTINCT date_trunc('month', day::timestamp)::date AS month, user_id, action_type FROM k) k
      WHERE t.month = k.month AND t.user_id = k.user_id AND t.action_type = k.action_type AND ${zero("t")}
    )
    DELETE FROM tokenboard.user_usage_month_total t USING (SELECT DISTINCT date_trunc('month', day::timestamp)::date AS month, user_id FROM k) k
    WHERE t.month = k.month AND t.user_id = k.user_id AND ${zero("t")}`;
}

const QUEUE_COLUMNS = sql`sign, created_at, user_id, action_type, route, model_used, success, tokens_used, input_tokens, output_tokens, cost_cents`;
/** What a consumed queue row returns: QUEUE_COLUMNS and what charging needs. */
const CONSUMED_COLUMNS = sql`${QUEUE_COLUMNS}, id AS queue_id, usage_id`;

export interface RollupRun {
  rows: number;
  batches: number;
  ms: number;
  /** Another rollup (a rebuild) held the lock; nothing was done. */
  skipped: boolean;
  /** The queue was emptied (false when `maxMs` ran out first: there is a backlog). */
  drained: boolean;
  /** Days moved into the month rollups first (closeUserMonthDays), [from, to); null when none were due. */
  closed: { from: string; to: string } | null;
  /** Ledger entries written by applying staged charges (decision 016). */
  charged: number;
}

/**
 * Consumes one batch of the queue in id order; 0 when empty, null when the lock is held elsewhere.
 * With `charge`, the same statement stages what the batch owes (decision 016).
 */
async function consumeBatch(db: Kysely<Database>, batchSize: number, charge: boolean): Promise<number | null> {
  return db.transaction().execute(async (trx) => {
    const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${ROLLUP_LOCK}) AS ok`.execute(trx);
    if (!locked.rows[0]?.ok) return null;
    // = ANY(ARRAY(…)): the ids are picked once (an InitPlan) and deleted through the primary key.
    // With `id IN (SELECT … LIMIT n FOR UPDATE)` a plan made while the queue looked empty can
    // be a nested loop that re-runs the locking subquery for every queue row: quadratic, and
    // minutes for a 50,000-row batch (seen in the bench).
    const source = sql`
      DELETE FROM tokenboard.usage_rollup_queue
      WHERE id = ANY(ARRAY(SELECT id FROM tokenboard.usage_rollup_queue ORDER BY id LIMIT ${batchSize} FOR UPDATE SKIP LOCKED))
      RETURNING ${CONSUMED_COLUMNS}`;
    const result = await rollupStatement(source, { charge }).execute(trx);
    const removed = result.rows[0]?.removed;
    if (removed) await pruneEmptyUserRows(removed).execute(trx);
    return Number(result.rows[0]?.rows ?? 0);
  });
}

/**
 * Moves the days that have closed into the per-user month rollups: the day rows from the
 * horizon's open_from up to `openFrom` (by default today, UTC: only today stays open) are added into
 * user_usage_month and user_usage_month_total and the horizon moves, in one transaction under the
 * rollup lock. It never moves back. Nothing to do, the usual case, costs one lookup. Answers the
 * days closed ([from, to)), null when there were none or another rollup holds the lock.
 */
export async function closeUserMonthDays(db: Kysely<Database>, options: { openFrom?: string } = {}): Promise<{ from: string; to: string } | null> {
  return db.transaction().execute(async (trx) => {
    const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${ROLLUP_LOCK}) AS ok`.execute(trx);
    if (!locked.rows[0]?.ok) return null;
    const due = options.openFrom === undefined ? sql`(now() AT TIME ZONE 'UTC')::date` : sql`${options.openFrom}::date`;
    const { rows } = await sql<{ from: string; to: string }>`
      SELECT open_from::text AS "from", (${due})::text AS "to" FROM tokenboard.user_month_horizon WHERE open_from < ${due} FOR UPDATE`.execute(trx);
    const days = rows[0];
    if (!days) return null;
    const closing = sql`day >= ${days.from}::date AND day < ${days.to}::date`;
    await sql`
      WITH months AS (${monthInsert(sql`tokenboard.user_usage_day`, closing)}),
      totals AS (${monthTotalInsert(sql`tokenboard.user_usage_day_total`, closing)})
      UPDATE tokenboard.user_month_horizon SET open_from = ${days.to}::date`.execute(trx);
    return days;
  });
}

/** What a log line says of the days closeUserMonthDays moved. */
export function describeClosedDays(days: { from: string; to: string }): string {
  return `days ${days.from} to ${days.to} (exclusive) moved into the month rollups`;
}

/**
 * The job: close the days due (closeUserMonthDays), then consume the queue until it is empty (or
 * `maxMs` has passed), applying what each batch staged to the ledger right after it (charging
 * on unless `charge` or TOKENBOARD_CHARGE_USAGE says off; staged charges are applied either way).
 */
export async function runRollup(db: Kysely<Database>, options: { batchSize?: number; maxMs?: number; openFrom?: string; charge?: boolean } = {}): Promise<RollupRun> {
  const started = Date.now();
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const charge = options.charge ?? chargingEnabled();
  let rows = 0;
  let batches = 0;
  const closed = await closeUserMonthDays(db, { openFrom: options.openFrom });
  // Staged by an earlier run that stopped before applying (a crash, a failed apply).
  let charged = (await applyPendingCharges(db)).entries;
  for (;;) {
    const consumed = await consumeBatch(db, batchSize, charge);
    if (consumed === null) return { rows, batches, ms: Date.now() - started, skipped: batches === 0, drained: false, closed, charged };
    if (consumed === 0) break;
    if (charge) charged += (await applyPendingCharges(db)).entries;
    rows += consumed;
    batches += 1;
    if (consumed < batchSize) break;
    if (options.maxMs !== undefined && Date.now() - started > options.maxMs) {
      return { rows, batches, ms: Date.now() - started, skipped: false, drained: false, closed, charged };
    }
  }
  return { rows, batches, ms: Date.now() - started, skipped: false, drained: true, closed, charged };
}

/**
 * Rebuilds every rollup from token_usage. One REPEATABLE READ snapshot aggregates the table
 * and deletes exactly the queue rows it can see: rows committed later stay queued and are
 * consumed by the next run, so nothing is lost or counted twice while ingest goes on.
 */
export async function rebuildRollups(db: Kysely<Database>, options: { charge?: boolean } = {}): Promise<{ rows: number; ms: number }> {
  const charge = options.charge ?? chargingEnabled();
  const started = Date.now();
  return db.connection().execute(async (conn) => {
    // Session lock taken before the snapshot: the snapshot then sees every finished job.
    await sql`SELECT pg_advisory_lock(${ROLLUP_LOCK})`.execute(conn);
    try {
      const rows = await conn.transaction().setIsolationLevel("repeatable read").execute(async (trx) => {
        for (const table of ROLLUP_TABLES) {
          await sql`DELETE FROM ${sql.table(`tokenboard.${table}`)}`.execute(trx);
        }
        // The queued rows are rolled up from token_usage below, but what they owe is staged from them.
        if (charge) {
          await sql`WITH src AS MATERIALIZED (DELETE FROM tokenboard.usage_rollup_queue RETURNING ${CONSUMED_COLUMNS}), ${stageChargesSql()} SELECT 1`.execute(trx);
        } else {
          await sql`DELETE FROM tokenboard.usage_rollup_queue`.execute(trx);
        }
        const source = sql`SELECT 1::smallint AS sign, u.created_at, u.user_id, u.action_type, u.route, u.model_used, u.success, u.tokens_used, u.input_tokens, u.output_tokens, ${costCentsSql} AS cost_cents
          FROM public.token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used`;
        const result = await rollupStatement(source, { fresh: true }).execute(trx);
        return Number(result.rows[0]?.rows ?? 0);
      });
      // Freshly written tables: without a visibility map, index-only scans (which the pages'
      // queries rely on) visit the heap for every row until autovacuum gets round to them.
      await sql`VACUUM (ANALYZE) ${sql.join(ROLLUP_TABLES.map((table) => sql.table(`tokenboard.${table}`)))}`.execute(conn);
      return { rows, ms: Date.now() - started };
    } finally {
      await sql`SELECT pg_advisory_unlock(${ROLLUP_LOCK})`.execute(conn);
    }
  });
}

const BUILT_FLAG = "rollups_built";

/**
 * The first build of the rollups, once per database (recorded in settings). prepareDatabase runs
 * it, so an adopted database's existing rows are rolled up before the first page reads them;
 * rows inserted meanwhile are queued by the trigger and consumed by the job.
 */
export async function ensureRollupsBuilt(db: Kysely<Database>): Promise<{ rows: number; ms: number } | null> {
  const flag = await db.selectFrom("settings").select("key").where("key", "=", BUILT_FLAG).executeTakeFirst();
  if (flag) return null;
  const built = await rebuildRollups(db);
  await db
    .insertInto("settings")
    .values({ key: BUILT_FLAG, value: JSON.stringify({ at: new Date().toISOString(), rows: built.rows }) })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
  return built;
}

/** True when rollups are empty although token_usage has rows (an adopted or freshly loaded database). */
export async function needsInitialBuild(db: Kysely<Database>): Promise<boolean> {
  const result = await sql<{ needs: boolean }>`
    SELECT NOT EXISTS (SELECT 1 FROM tokenboard.usage_rollup_day) AND EXISTS (SELECT 1 FROM public.token_usage)
       AND NOT EXISTS (SELECT 1 FROM tokenboard.usage_rollup_queue) AS needs`.execute(db);
  return result.rows[0]?.needs ?? false;
}

/**
 * A queue holding most of the table (a bulk load with triggers on) is cheaper to replace by a
 * rebuild, one pass over token_usage, than to consume batch by batch.
 */
async function queueDwarfsTable(db: Kysely<Database>): Promise<boolean> {
  const result = await sql<{ queued: number; rows: number }>`
    SELECT COALESCE((SELECT max(id) - min(id) + 1 FROM tokenboard.usage_rollup_queue), 0)::bigint AS queued,
           GREATEST((SELECT reltuples FROM pg_class WHERE oid = 'public.token_usage'::regclass), 0)::bigint AS rows`.execute(db);
  const { queued, rows } = result.rows[0] ?? { queued: 0, rows: 0 };
  return queued > 1_000_000 && queued > rows / 2;
}

/**
 * What the in-process job runs: the initial build when needed, else the incremental pass. A
 * pass that ran out of time reports a backlog, so the job runs again at once instead of
 * waiting its interval while pages add an ever larger queue tail.
 */
export async function rollupJob(db: Kysely<Database>, options: { queueVacuumRows?: number; charge?: boolean } = {}): Promise<{ summary?: string; backlog: boolean }> {
  const charge = options.charge ?? chargingEnabled();
  if ((await needsInitialBuild(db)) || (await queueDwarfsTable(db))) {
    const built = await rebuildRollups(db, { charge });
    await applyPendingCharges(db);
    return { summary: `initial build: ${built.rows} rows`, backlog: false };
  }
  const run = await runRollup(db, { maxMs: 4_000, charge });
  const vacuumed = await vacuumQueueAfter(db, run.rows, options.queueVacuumRows ?? QUEUE_VACUUM_ROWS);
  const parts = [
    ...(run.closed ? [describeClosedDays(run.closed)] : []),
    ...(run.rows ? [`${run.rows} rows in ${run.batches} batch(es)`] : []),
    ...(run.charged ? [`${run.charged} charge entries`] : []),
    ...(vacuumed ? [vacuumed] : []),
  ];
  const summary = parts.length ? parts.join("; ") : undefined;
  return { summary, backlog: !run.drained };
}

/** Rows the job consumes between two VACUUMs of the queue. */
export const QUEUE_VACUUM_ROWS = 50_000;
const consumedSinceVacuum = new WeakMap<object, number>();

/**
 * VACUUMs the queue once the job has consumed `every` rows (QUEUE_VACUUM_ROWS) since the last time.
 * Every page reads the queue's tail with a sequential scan, which walks the rows the job
 * deleted until a vacuum frees their space; autovacuum looks at a database at most once a
 * minute (autovacuum_naptime), and under steady ingest the queue's heap grew to ~4,000 pages
 * (200,000 dead rows around 20,000 live ones) in that time, which every page read then
 * walked three times. SKIP_LOCKED: when autovacuum is at it already, nothing waits; PARALLEL 0:
 * the queue's two small indexes are not worth a worker process each. Answers what was done,
 * for the job's log line.
 */
async function vacuumQueueAfter(db: Kysely<Database>, consumed: number, every: number): Promise<string | null> {
  const total = (consumedSinceVacuum.get(db) ?? 0) + consumed;
  if (total < every) {
    consumedSinceVacuum.set(db, total);
    return null;
  }
  consumedSinceVacuum.set(db, 0);
  const started = Date.now();
  try {
    await sql`VACUUM (SKIP_LOCKED, PARALLEL 0) tokenboard.usage_rollup_queue`.execute(db);
    return `queue vacuumed (${Date.now() - started} ms)`;
  } catch (error) {
    // A role that may not vacuum the table leaves it to autovacuum; the rollups are unaffected.
    return `queue not vacuumed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

// ---------------------------------------------------------------------------------------
// Reading: rollups for whole UTC days, 15-minute rollups for the partial days at the edges,
// and the queue tail, all for one instant range [start, end).

export interface InstantRange {
  start: Date;
  end: Date;
}

interface RangeSplit {
  /** Whole UTC days inside the range, as dates (end exclusive); null when there are none. */
  days: { from: string; to: string; fromInstant: Date; toInstant: Date } | null;
  /** Instant spans read from 15-minute rollups. */
  edges: { start: Date; end: Date }[];
}

/**
 * The UTC days of an instant range, which every rollup reader splits it by: `inner` the whole
 * days inside it (start rounded up to a UTC midnight, end rounded down, never before the
 * start's), `outer` the days it touches (start rounded down, end rounded up).
 */
export function utcDays(range: InstantRange): { innerFrom: DateTime; innerTo: DateTime; outerFrom: DateTime; outerTo: DateTime } {
  const start = DateTime.fromJSDate(range.start, { zone: "UTC" });
  const end = DateTime.fromJSDate(range.end, { zone: "UTC" });
  const startDay = start.startOf("day");
  const endDay = end.startOf("day");
  const innerFrom = start.equals(startDay) ? start : startDay.plus({ days: 1 });
  return { innerFrom, innerTo: DateTime.max(endDay, innerFrom), outerFrom: startDay, outerTo: end.equals(endDay) ? end : endDay.plus({ days: 1 }) };
}

export function splitRange(range: InstantRange, wholeDays = true): RangeSplit {
  const { innerFrom: firstFull, innerTo: lastFull } = utcDays(range);
  if (!wholeDays || firstFull >= lastFull) return { days: null, edges: [{ start: range.start, end: range.end }] };
  const edges = [
    { start: range.start, end: firstFull.toJSDate() },
    { start: lastFull.toJSDate(), end: range.end },
  ].filter((e) => e.start < e.end);
  return {
    days: { from: firstFull.toISODate() as string, to: lastFull.toISODate() as string, fromInstant: firstFull.toJSDate(), toInstant: lastFull.toJSDate() },
    edges,
  };
}

interface UserRangeSplit {
  /** Whole UTC days read from the per-user rollups (with the queue tail of those days). */
  days: { from: string; to: string; fromInstant: Date; toInstant: Date } | null;
  /** Raw rows added (partial days at the edges)… */
  plus: { start: Date; end: Date }[];
  /** …and raw rows subtracted (the part of a mostly-covered edge day outside the range). */
  minus: { start: Date; end: Date }[];
}

const HALF_DAY_MS = 43_200_000;

/**
 * splitRange for per-user reads, where a partial day costs raw rows: an edge day the range
 * covers for more than half is read whole from the day rollup minus the raw rows of the part
 * outside the range, so at most half a day of raw rows is read per edge. For a range ending
 * now (the usual "last 30 days"), the part outside is the future and holds no rows.
 */
export function userRangeSplit(range: InstantRange): UserRangeSplit {
  const start = DateTime.fromJSDate(range.start, { zone: "UTC" });
  const end = DateTime.fromJSDate(range.end, { zone: "UTC" });
  if (end <= start) return { days: null, plus: [], minus: [] };
  let { outerFrom: from, outerTo: to } = utcDays(range);
  const plus: { start: Date; end: Date }[] = [];
  const minus: { start: Date; end: Date }[] = [];
  const span = (a: DateTime, b: DateTime) => ({ start: a.toJSDate(), end: b.toJSDate() });
  if (from.plus({ days: 1 }).equals(to)) {
    // Within one UTC day.
    if (end.diff(start).toMillis() <= HALF_DAY_MS) return { days: null, plus: [span(start, end)], minus: [] };
    if (start > from) minus.push(span(from, start));
    if (end < to) minus.push(span(end, to));
  } else {
    if (start > from) {
      const dayEnd = from.plus({ days: 1 });
      if (dayEnd.diff(start).toMillis() > HALF_DAY_MS) minus.push(span(from, start));
      else {
        plus.push(span(start, dayEnd));
        from = dayEnd;
      }
    }
    if (end < to) {
      const dayStart = to.minus({ days: 1 });
      if (end.diff(dayStart).toMillis() > HALF_DAY_MS) minus.push(span(end, to));
      else {
        plus.push(span(dayStart, end));
        to = dayStart;
      }
    }
  }
  const days = from < to ? { from: from.toISODate() as string, to: to.toISODate() as string, fromInstant: from.toJSDate(), toInstant: to.toJSDate() } : null;
  return { days, plus, minus };
}

/** `AND column = actionType` when reading one action type, nothing when reading all. */
function andActionType(column: RawBuilder<unknown>, actionType: string | undefined): RawBuilder<unknown> {
  return actionType !== undefined ? sql`AND ${column} = ${actionType}` : sql``;
}

function instantIn(column: RawBuilder<unknown>, spans: { start: Date; end: Date }[]): RawBuilder<unknown> {
  if (!spans.length) return sql`false`;
  return sql.join(spans.map((s) => sql`(${column} >= ${s.start} AND ${column} < ${s.end})`), sql` OR `);
}

/** The zone's UTC offset in minutes when it keeps one over the whole range (no DST change in it), else null. */
export function fixedOffsetMinutes(tz: string, range: InstantRange): number | null {
  const DAY = 86_400_000;
  const offset = DateTime.fromJSDate(range.start, { zone: tz }).offset;
  for (let t = range.start.getTime() + DAY; t < range.end.getTime() + DAY; t += DAY) {
    if (DateTime.fromMillis(Math.min(t, range.end.getTime()), { zone: tz }).offset !== offset) return null;
  }
  return offset;
}

/**
 * An instant column's local date in `tz`, given the zone's fixedOffsetMinutes over the rows' range.
 * A zone that keeps one offset is shifted by it, arithmetic only; AT TIME ZONE with the zone's name
 * looks its rules up for every row: 100,000 15-minute rows for 30 days in Asia/Kolkata (10M set)
 * grouped by local date in 40–42 ms shifted, 77–170 ms by name.
 */
function localDateSql(column: RawBuilder<unknown>, tz: string, offset: number | null): RawBuilder<string> {
  return offset === null ? sql<string>`(${column} AT TIME ZONE ${tz})::date` : sql<string>`(${column} AT TIME ZONE ${`${offset} minutes`}::interval)::date`;
}

/**
 * The queue tail of one range, read once for a statement that needs it more than once
 * (the overview: totals and days from usage facts, active users from user facts). Put `cte`
 * first in the statement's WITH and pass the object as `tail` to usageFacts, userFacts and
 * tokensPerDayByTypeSql for the same range. One scan, one hash aggregate with two grouping
 * sets: the rows of the range by bucket × action type, and the rows of the whole UTC days
 * userFacts reads from rollups by user. It carries calls, failures, tokens and cost_cents only
 * (route, model and the other measures are NULL), so its readers must read no other column.
 * Made for one action type (`actionType`), it holds that type's rows only, and every reader it is
 * passed to reads that type only. Every page read walks the whole tail, so under heavy ingest
 * the tail is most of a read's cost; see docs/rollups.md.
 */
export interface SharedQueueTail {
  range: InstantRange;
  actionType: string | undefined;
  cte: RawBuilder<unknown>;
}

const SHARED_TAIL = sql.raw("queue_tail");

export function sharedQueueTail(range: InstantRange, actionType?: string): SharedQueueTail {
  const days = userRangeSplit(range).days;
  const from = days && days.fromInstant < range.start ? days.fromInstant : range.start;
  const to = days && days.toInstant > range.end ? days.toInstant : range.end;
  const inDays = days ? sql`u.created_at >= ${days.fromInstant} AND u.created_at < ${days.toInstant}` : sql`false`;
  // Users are grouped without their action type: a hash aggregate's cost grows with its groups,
  // and by user × type the tail has about as many groups as rows (10M bench set, 100,000 rows
  // of 10,000 users queued: the user grouping 72–100 ms by user and type, 18–30 ms by user).
  return {
    range,
    actionType,
    cte: sql`${SHARED_TAIL} AS MATERIALIZED (
      SELECT in_range, in_days, bucket, action_type, user_id, ${userMeasureSums}
      FROM (SELECT u.sign, u.success, u.tokens_used, u.action_type, u.user_id, ${bucketSql} AS bucket, u.cost_cents,
                   u.created_at >= ${range.start} AND u.created_at < ${range.end} AS in_range, ${inDays} AS in_days
            FROM tokenboard.usage_rollup_queue u
            WHERE u.created_at >= ${from} AND u.created_at < ${to} ${andActionType(sql`u.action_type`, actionType)}) t
      GROUP BY GROUPING SETS ((in_range, bucket, action_type), (in_days, user_id)))`,
  };
}

function sharedTailFor(tail: SharedQueueTail, range: InstantRange): RawBuilder<unknown> {
  if (tail.range.start.getTime() !== range.start.getTime() || tail.range.end.getTime() !== range.end.getTime()) {
    throw new Error("a shared queue tail serves the range it was made for only");
  }
  return SHARED_TAIL;
}

/**
 * userFacts' part from a shared tail: its user rows, grouped by user only. The tail must be made
 * for the action type userFacts filters by (or for none when it filters by none), and serves no
 * per-type reading of all types.
 */
function sharedTailUsers(tail: SharedQueueTail, range: InstantRange, options: { byType?: boolean; actionType?: string }): RawBuilder<unknown> {
  if (tail.actionType !== options.actionType) throw new Error("a shared queue tail serves readers of the action type it was made for only");
  if (options.byType && options.actionType === undefined) throw new Error("a shared queue tail holds no per-user rows by action type");
  const type = options.actionType !== undefined ? sql`${options.actionType}::text AS action_type, ` : sql``;
  return sql`SELECT user_id, ${type}calls, failures, tokens, cost_cents FROM ${sharedTailFor(tail, range)} WHERE in_days`;
}

/**
 * Usage measures by bucket × action_type × route × model for the range, exact: rollups plus
 * the queue tail. `bucket` is a 15-minute bucket, or a UTC midnight for a whole-day row when
 * `wholeDays` is on (use it off when grouping by local day in a zone that is not UTC). With `tail`
 * (a sharedQueueTail of the same range) the queue part comes from it, grouped by bucket and action
 * type only and with calls, failures, tokens and cost_cents only; a tail made for one action type
 * makes these the facts of that type.
 */
export function usageFacts(range: InstantRange, options: { wholeDays?: boolean; tail?: SharedQueueTail } = {}): RawBuilder<unknown> {
  const split = splitRange(range, options.wholeDays ?? true);
  const typeOnly = andActionType(sql`action_type`, options.tail?.actionType);
  const tail = options.tail
    ? sql`SELECT bucket, action_type, NULL, NULL, calls, failures, tokens, NULL, NULL, cost_cents, NULL, NULL, NULL
          FROM ${sharedTailFor(options.tail, range)} WHERE in_range`
    : sql`SELECT bucket, action_type, route, model, ${measureSums}
          FROM (${classifiedSql(sql`SELECT ${QUEUE_COLUMNS} FROM tokenboard.usage_rollup_queue WHERE created_at >= ${range.start} AND created_at < ${range.end}`)}) tail
          GROUP BY bucket, action_type, route, model`;
  const dayPart = split.days
    ? sql`SELECT (day::timestamp AT TIME ZONE 'UTC') AS bucket, action_type, route, model, calls, failures, tokens, input_tokens, output_tokens, cost_cents, below_range, above_range, max_tokens
          FROM tokenboard.usage_rollup_day WHERE day >= ${split.days.from}::date AND day < ${split.days.to}::date ${typeOnly}
          UNION ALL `
    : sql``;
  return sql`
    ${dayPart}
    SELECT bucket, action_type, route, model, calls, failures, tokens, input_tokens, output_tokens, cost_cents, below_range, above_range, max_tokens
    FROM tokenboard.usage_rollup_15m WHERE (${instantIn(sql`bucket`, split.edges)}) ${typeOnly}
    UNION ALL
    ${tail}`;
}

export interface DailyTypeTokens {
  day: string;
  action_type: string;
  tokens: number;
  calls: number;
}

/**
 * Tokens and calls per local day in `tz` and action type, exact, from the rollups: a 15-minute
 * bucket lies inside one local day in every zone, and where the zone keeps UTC's days over the
 * range the day rollups serve the whole days. `where` filters the facts (columns of usageFacts).
 */
export function tokensPerDayByTypeSql(range: InstantRange, tz: string, where: RawBuilder<unknown> = sql`true`, tail?: SharedQueueTail): RawBuilder<DailyTypeTokens> {
  const offset = fixedOffsetMinutes(tz, range);
  // Grouped by the date, formatted per group: to_char on every fact row (100,000 15-minute rows
  // for 30 days in Asia/Kolkata at 10M) cost as much again as the rest of the query.
  return sql<DailyTypeTokens>`
    SELECT to_char(d.day, 'YYYY-MM-DD') AS day, d.action_type, d.tokens, d.calls
    FROM (
      SELECT ${localDateSql(sql`f.bucket`, tz, offset)} AS day, f.action_type, sum(f.tokens)::bigint AS tokens, sum(f.calls)::bigint AS calls
      FROM (${usageFacts(range, { wholeDays: offset === 0, tail })}) f
      WHERE ${where}
      GROUP BY 1, 2
      HAVING sum(f.calls) <> 0
    ) d
    ORDER BY d.day, d.action_type`;
}

/** Token histogram bins by action type for the range (rollups plus tail). */
export function histogramFacts(range: InstantRange): RawBuilder<unknown> {
  const split = splitRange(range);
  const dayPart = split.days
    ? sql`SELECT action_type, bin, calls FROM tokenboard.usage_hist_day WHERE day >= ${split.days.from}::date AND day < ${split.days.to}::date UNION ALL `
    : sql``;
  return sql`
    ${dayPart}
    SELECT action_type, bin, calls FROM tokenboard.usage_hist_15m WHERE ${instantIn(sql`bucket`, split.edges)}
    UNION ALL
    SELECT action_type, bin, sign::bigint AS calls
    FROM (${classifiedSql(sql`SELECT ${QUEUE_COLUMNS} FROM tokenboard.usage_rollup_queue WHERE created_at >= ${range.start} AND created_at < ${range.end}`)}) tail`;
}

/** A piece of a whole-day range read from the per-user rollups: a month's row, or day rows added or subtracted. */
export type DayCoverPiece = { month: string } | { from: string; to: string; sign: 1 | -1 };

/**
 * How to read whole UTC days [from, to) per user with the fewest rollup rows: a month the
 * range covers whole is its month row; a month it covers mostly is the month row minus the
 * days it leaves out (the measures userFacts reads are sums, so subtracting is exact); a
 * month it touches little is its day rows.
 */
export function coverDays(from: string, to: string): DayCoverPiece[] {
  const end = DateTime.fromISO(to, { zone: "UTC" });
  const pieces: DayCoverPiece[] = [];
  for (let month = DateTime.fromISO(from, { zone: "UTC" }).startOf("month"); month < end; month = month.plus({ months: 1 })) {
    const next = month.plus({ months: 1 });
    const a = DateTime.max(month, DateTime.fromISO(from, { zone: "UTC" }));
    const b = DateTime.min(next, end);
    const covered = b.diff(a, "days").days;
    const left = next.diff(month, "days").days - covered;
    const iso = (d: DateTime) => d.toISODate() as string;
    if (left + 1 < covered) {
      pieces.push({ month: iso(month) });
      if (a > month) pieces.push({ from: iso(month), to: iso(a), sign: -1 });
      if (b < next) pieces.push({ from: iso(b), to: iso(next), sign: -1 });
    } else {
      pieces.push({ from: iso(a), to: iso(b), sign: 1 });
    }
  }
  return pieces;
}

/**
 * The number of users with calls in `facts` (userFacts rows), as a scalar subquery. `calls` is
 * summed as float8, which holds whole numbers exactly up to 2^53: PostgreSQL sums bigint as
 * numeric, a numeric state per user — 34 against 16 ms for 70,000 rows of 30,000 users, and the
 * overview's statement on the 10M bench set 21.2 → 15.8 ms (p50, empty queue) and ~4–5 ms less
 * with 20,000 rows queued (server time, alternated).
 */
export function activeUserCountSql(facts: RawBuilder<unknown>): RawBuilder<number> {
  return sql<number>`(SELECT count(*) FROM (SELECT user_id FROM (${facts}) uf GROUP BY user_id HAVING sum(calls::float8) > 0) active)`;
}

/**
 * Per user for the range: whole UTC days from the per-user month and day rollups (coverDays)
 * plus the queue tail of those days; the partial days at the edges from raw rows, added, or
 * subtracted from a whole day when the range covers most of it (userRangeSplit); with `tail` (a
 * sharedQueueTail of the same range) the queue part comes from it. `byType` keeps action_type (user_usage_day/_month); without it the smaller
 * *_total tables are read. `actionType` restricts to one type. Columns: user_id,
 * [action_type,] calls, failures, tokens, cost_cents. A user can appear with 0 calls (a
 * month row minus its days): readers sum and keep users with sum(calls) > 0.
 */
export function userFacts(range: InstantRange, options: { byType?: boolean; actionType?: string; tail?: SharedQueueTail } = {}): RawBuilder<unknown> {
  const split = userRangeSplit(range);
  const byType = options.byType || options.actionType !== undefined;
  const typeColumn = byType ? sql`action_type, ` : sql``;
  const typeWhere = (column: RawBuilder<unknown>) => andActionType(column, options.actionType);
  const rawRows = (spans: { start: Date; end: Date }[], sign: 1 | -1) => sql`
    SELECT u.user_id, ${byType ? sql`u.action_type, ` : sql``}(${sql.lit(sign)})::bigint AS calls, (${sql.lit(sign)}) * (NOT u.success)::int::bigint AS failures,
           (${sql.lit(sign)}) * u.tokens_used::bigint AS tokens, (${sql.lit(sign)}) * ${costCentsSql} AS cost_cents
    FROM public.token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE (${instantIn(sql`u.created_at`, spans)}) ${typeWhere(sql`u.action_type`)}`;
  const raw = [...(split.plus.length ? [rawRows(split.plus, 1)] : []), ...(split.minus.length ? [rawRows(split.minus, -1)] : [])];
  if (!split.days) return raw.length ? sql.join(raw, sql` UNION ALL `) : rawRows([], 1);
  const dayTable = byType ? sql`tokenboard.user_usage_day` : sql`tokenboard.user_usage_day_total`;
  const monthTable = byType ? sql`tokenboard.user_usage_month` : sql`tokenboard.user_usage_month_total`;
  const rollupRows = coverDays(split.days.from, split.days.to).map((piece) => {
    if ("month" in piece) {
      // The month row holds its closed days; its open ones are day rows still.
      const month = sql`${piece.month}::date`;
      return sql`SELECT user_id, ${typeColumn}calls, failures, tokens, cost_cents FROM ${monthTable} WHERE month = ${month} ${typeWhere(sql`action_type`)}
        UNION ALL
        SELECT user_id, ${typeColumn}calls, failures, tokens, cost_cents
        FROM ${dayTable} WHERE day >= GREATEST(${month}, ${openFrom}) AND day < (${month} + interval '1 month')::date ${typeWhere(sql`action_type`)}`;
    }
    const sign = sql.lit(piece.sign);
    return sql`SELECT user_id, ${typeColumn}(${sign}) * calls AS calls, (${sign}) * failures AS failures,
      (${sign}) * tokens AS tokens, (${sign}) * cost_cents AS cost_cents
      FROM ${dayTable} WHERE day >= ${piece.from}::date AND day < ${piece.to}::date ${typeWhere(sql`action_type`)}`;
  });
  return sql.join(
    [
      ...rollupRows,
      options.tail
        ? sharedTailUsers(options.tail, range, options)
        : sql`SELECT user_id, ${typeColumn}sign::bigint, CASE WHEN success THEN 0 ELSE sign END::bigint, (sign * tokens_used)::bigint, ${signedCost}
    FROM tokenboard.usage_rollup_queue WHERE created_at >= ${split.days.fromInstant} AND created_at < ${split.days.toInstant} ${typeWhere(sql`action_type`)}`,
      ...raw,
    ],
    sql` UNION ALL `,
  );
}

/**
 * Runs `fn` in a transaction without parallel workers, for ranking or counting users over
 * userFacts. The planner cannot see how many users the union of rollup rows, queue tail and
 * raw edges holds (it guesses 200 groups), so it plans a parallel partial aggregate with a sort
 * and a merge, and a worker process each per query, for what one small hash aggregate does.
 * Measured at 10M rows (2026-11-30): top users over 30 days in Asia/Kolkata (10,000 users,
 * ~54,000 fact rows) 140–150 ms with workers, 64–69 ms without; the overview's totals with
 * active users, 50,000 rows queued, 181–224 ms of PostgreSQL CPU with workers, 93–95 without.
 */
export function withoutParallelWorkers<T>(db: Kysely<Database>, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    await sql`SET LOCAL max_parallel_workers_per_gather = 0`.execute(trx);
    return fn(trx);
  });
}

export interface UserActionTotal {
  user_id: string;
  action_type: string;
  calls: number;
  tokens: number;
  cost_cents: number;
}

/**
 * Exact per (user, action type) totals for any instant range, e.g. a month in a zone from
 * monthPeriod(): what monthly reports and exports need.
 */
export async function userActionTotals(db: Kysely<Database>, range: InstantRange): Promise<UserActionTotal[]> {
  const result = await sql<UserActionTotal>`
    SELECT user_id, action_type, sum(calls)::bigint AS calls, sum(tokens)::bigint AS tokens, COALESCE(sum(cost_cents), 0)::float8 AS cost_cents
    FROM (${userFacts(range, { byType: true })}) f
    GROUP BY user_id, action_type
    HAVING sum(calls) <> 0
    ORDER BY user_id, action_type`.execute(db);
  return result.rows;
}

/**
 * Rows waiting in the rollup queue, read from its id range (two primary-key lookups, whatever
 * its size): the job consumes in id order, so the range is the queue, up to the gaps of rolled
 * back inserts.
 */
export async function rollupQueueDepth(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ depth: string | number }>`
    SELECT COALESCE(max(id) - min(id) + 1, 0) AS depth FROM tokenboard.usage_rollup_queue`.execute(db);
  return Number(rows[0]?.depth ?? 0);
}
