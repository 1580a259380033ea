import { sql, type Kysely } from "kysely";

/**
 * The per-user month rollups (user_usage_month, user_usage_month_total) hold the days before
 * `tokenboard.user_month_horizon.open_from` only; the days from it on (today, UTC)
 * are "open": in the day rollups, and added by the readers of a month row from there. The
 * rollup job then writes one per-user row an event where it wrote two: at scale nearly every
 * event is a key of its own in each per-user table (many users, a few calls each), and the
 * month tables took a third of a batch. The job moves days into the months as they close,
 * once a day (closeUserMonthDays in app/models/rollup.server.ts). Decision 014.
 *
 * Up takes the open days out of the month rows (and drops rows left empty); down puts them back
 * and drops the horizon. first_at/last_at are left as they are: they only ever widen, and the
 * readers use them where they fall inside the range read. Under the rollup lock (ROLLUP_LOCK in
 * app/models/rollup.server.ts), so a job of another process cannot interleave.
 */
const ROLLUP_LOCK = 7_311_001;

const OPEN_DAYS = sql`(SELECT open_from FROM tokenboard.user_month_horizon)`;
const MONTH = sql`date_trunc('month', day::timestamp)::date`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${sql.lit(ROLLUP_LOCK)})`.execute(db);
  await sql`
    CREATE TABLE tokenboard.user_month_horizon (
      single boolean PRIMARY KEY DEFAULT true CHECK (single),
      open_from date NOT NULL
    )`.execute(db);
  await sql`INSERT INTO tokenboard.user_month_horizon (open_from) VALUES ((now() AT TIME ZONE 'UTC')::date)`.execute(db);
  await sql`
    UPDATE tokenboard.user_usage_month t
    SET calls = t.calls - d.calls, failures = t.failures - d.failures, tokens = t.tokens - d.tokens, cost_cents = t.cost_cents - d.cost_cents,
        below_range = t.below_range - d.below_range, above_range = t.above_range - d.above_range
    FROM (
      SELECT ${MONTH} AS month, user_id, action_type, sum(calls) AS calls, sum(failures) AS failures, sum(tokens) AS tokens,
             sum(cost_cents) AS cost_cents, sum(below_range) AS below_range, sum(above_range) AS above_range
      FROM tokenboard.user_usage_day WHERE day >= ${OPEN_DAYS} GROUP BY 1, user_id, action_type
    ) d
    WHERE t.month = d.month AND t.user_id = d.user_id AND t.action_type = d.action_type`.execute(db);
  await sql`
    UPDATE tokenboard.user_usage_month_total t
    SET calls = t.calls - d.calls, failures = t.failures - d.failures, tokens = t.tokens - d.tokens, cost_cents = t.cost_cents - d.cost_cents
    FROM (
      SELECT ${MONTH} AS month, user_id, sum(calls) AS calls, sum(failures) AS failures, sum(tokens) AS tokens, sum(cost_cents) AS cost_cents
      FROM tokenboard.user_usage_day_total WHERE day >= ${OPEN_DAYS} GROUP BY 1, user_id
    ) d
    WHERE t.month = d.month AND t.user_id = d.user_id`.execute(db);
  const emptySince = sql`month >= date_trunc('month', ${OPEN_DAYS}::timestamp)::date AND calls = 0 AND failures = 0 AND tokens = 0 AND cost_cents = 0`;
  await sql`DELETE FROM tokenboard.user_usage_month WHERE ${emptySince}`.execute(db);
  await sql`DELETE FROM tokenboard.user_usage_month_total WHERE ${emptySince}`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${sql.lit(ROLLUP_LOCK)})`.execute(db);
  await sql`
    INSERT INTO tokenboard.user_usage_month AS t (month, user_id, action_type, calls, failures, tokens, cost_cents, below_range, above_range, first_at, last_at)
    SELECT ${MONTH}, user_id, action_type, sum(calls), sum(failures), sum(tokens), sum(cost_cents), sum(below_range), sum(above_range), min(first_at), max(last_at)
    FROM tokenboard.user_usage_day WHERE day >= ${OPEN_DAYS} GROUP BY 1, user_id, action_type
    ON CONFLICT (month, user_id, action_type) DO UPDATE SET
      calls = t.calls + excluded.calls, failures = t.failures + excluded.failures, tokens = t.tokens + excluded.tokens,
      cost_cents = t.cost_cents + excluded.cost_cents, below_range = t.below_range + excluded.below_range,
      above_range = t.above_range + excluded.above_range, first_at = LEAST(t.first_at, excluded.first_at), last_at = GREATEST(t.last_at, excluded.last_at)`.execute(db);
  await sql`
    INSERT INTO tokenboard.user_usage_month_total AS t (month, user_id, calls, failures, tokens, cost_cents)
    SELECT ${MONTH}, user_id, sum(calls), sum(failures), sum(tokens), sum(cost_cents)
    FROM tokenboard.user_usage_day_total WHERE day >= ${OPEN_DAYS} GROUP BY 1, user_id
    ON CONFLICT (month, user_id) DO UPDATE SET
      calls = t.calls + excluded.calls, failures = t.failures + excluded.failures, tokens = t.tokens + excluded.tokens,
      cost_cents = t.cost_cents + excluded.cost_cents`.execute(db);
  await sql`DROP TABLE tokenboard.user_month_horizon`.execute(db);
}
