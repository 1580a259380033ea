import { sql, type Kysely } from "kysely";

/**
 * Per user (and per user × action type) and UTC month: the day rollups summed by month. A range
 * that covers most of a month reads that month's row and subtracts the few days it does not
 * cover, instead of reading ~30 day rows per user (docs/rollups.md, "Month rollups"). The
 * additive measures subtract exactly; first_at/last_at are only used where they fall inside
 * the range read, else looked up in user_usage_day through user_usage_day_user_type_idx.
 *
 * Filled from the day rollups under the rollup lock (ROLLUP_LOCK in app/models/rollup.server.ts),
 * so a rollup job running at the same time cannot add a batch to the days but not the months.
 */
const ROLLUP_LOCK = 7_311_001;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${sql.lit(ROLLUP_LOCK)})`.execute(db);
  await sql`
    CREATE TABLE tokenboard.user_usage_month (
      month date NOT NULL, user_id uuid NOT NULL, action_type text NOT NULL,
      calls bigint NOT NULL DEFAULT 0, failures bigint NOT NULL DEFAULT 0, tokens bigint NOT NULL DEFAULT 0,
      cost_cents numeric NOT NULL DEFAULT 0, below_range bigint NOT NULL DEFAULT 0, above_range bigint NOT NULL DEFAULT 0,
      first_at timestamptz, last_at timestamptz,
      PRIMARY KEY (month, user_id, action_type)
    )`.execute(db);
  await sql`CREATE INDEX user_usage_month_type_idx ON tokenboard.user_usage_month (action_type, month)`.execute(db);
  await sql`
    CREATE TABLE tokenboard.user_usage_month_total (
      month date NOT NULL, user_id uuid NOT NULL,
      calls bigint NOT NULL DEFAULT 0, failures bigint NOT NULL DEFAULT 0, tokens bigint NOT NULL DEFAULT 0,
      cost_cents numeric NOT NULL DEFAULT 0,
      PRIMARY KEY (month, user_id)
    )`.execute(db);
  // A user's first/last active day of one type inside a range, when the month's first/last call
  // lies outside it. It also serves what 0005's (user_id, day) index served: one user's days.
  await sql`CREATE INDEX user_usage_day_user_type_idx ON tokenboard.user_usage_day (user_id, action_type, day) INCLUDE (first_at, last_at)`.execute(db);
  await sql`DROP INDEX tokenboard.user_usage_day_user_idx`.execute(db);
  await sql`
    INSERT INTO tokenboard.user_usage_month (month, user_id, action_type, calls, failures, tokens, cost_cents, below_range, above_range, first_at, last_at)
    SELECT date_trunc('month', day::timestamp)::date, user_id, action_type, sum(calls), sum(failures), sum(tokens), sum(cost_cents),
           sum(below_range), sum(above_range), min(first_at), max(last_at)
    FROM tokenboard.user_usage_day GROUP BY 1, user_id, action_type`.execute(db);
  await sql`
    INSERT INTO tokenboard.user_usage_month_total (month, user_id, calls, failures, tokens, cost_cents)
    SELECT date_trunc('month', day::timestamp)::date, user_id, sum(calls), sum(failures), sum(tokens), sum(cost_cents)
    FROM tokenboard.user_usage_day_total GROUP BY 1, user_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS user_usage_day_user_idx ON tokenboard.user_usage_day (user_id, day)`.execute(db);
  await sql`DROP INDEX IF EXISTS tokenboard.user_usage_day_user_type_idx`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.user_usage_month_total`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.user_usage_month`.execute(db);
}
