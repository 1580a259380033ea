import { sql, type Kysely } from "kysely";

/**
 * Incremental usage rollups (design: docs/rollups.md).
 *
 * A statement-level trigger copies what the rollups need from every inserted, updated or
 * deleted token_usage row into a queue (+1 for new rows, -1 for old ones). The rollup job
 * consumes the queue in id order and adds it into the rollup tables in the same
 * transaction, so a row is counted once whatever the order, lateness or concurrency of
 * inserts. Pages read rollups plus the queue rows not consumed yet.
 *
 * Buckets are 15 minutes of UTC: every UTC offset in use is a multiple of 15 minutes, so any
 * zone's local day is a whole number of buckets. Day tables (UTC days) make long ranges
 * cheap; a range's partial UTC days at its edges come from the 15-minute tables.
 *
 * Adding triggers and empty tables rewrites no row of an adopted token_usage; existing rows
 * are rolled up by `cli rollup --rebuild` (run automatically when the rollups are empty).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE tokenboard.usage_rollup_queue (
      id bigserial PRIMARY KEY,
      sign smallint NOT NULL CHECK (sign IN (-1, 1)),
      created_at timestamptz NOT NULL,
      user_id uuid NOT NULL,
      action_type text NOT NULL,
      route text,
      model_used text NOT NULL,
      success boolean NOT NULL,
      tokens_used integer NOT NULL,
      input_tokens integer,
      output_tokens integer,
      calculated_cost_cents numeric(12,4),
      audio_seconds numeric(10,2)
    )`.execute(db);
  // Pages add the not-yet-consumed tail for their range.
  await sql`CREATE INDEX usage_rollup_queue_created_idx ON tokenboard.usage_rollup_queue (created_at)`.execute(db);

  await sql`
    CREATE FUNCTION tokenboard.enqueue_usage_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO tokenboard.usage_rollup_queue (sign, created_at, user_id, action_type, route, model_used, success,
          tokens_used, input_tokens, output_tokens, calculated_cost_cents, audio_seconds)
        SELECT -1, created_at, user_id, action_type, route, model_used, success,
          tokens_used, input_tokens, output_tokens, calculated_cost_cents, audio_seconds FROM old_rows;
      END IF;
      IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO tokenboard.usage_rollup_queue (sign, created_at, user_id, action_type, route, model_used, success,
          tokens_used, input_tokens, output_tokens, calculated_cost_cents, audio_seconds)
        SELECT 1, created_at, user_id, action_type, route, model_used, success,
          tokens_used, input_tokens, output_tokens, calculated_cost_cents, audio_seconds FROM new_rows;
      END IF;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER token_usage_rollup_insert AFTER INSERT ON public.token_usage
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tokenboard.enqueue_usage_rollup()`.execute(db);
  await sql`
    CREATE TRIGGER token_usage_rollup_update AFTER UPDATE ON public.token_usage
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tokenboard.enqueue_usage_rollup()`.execute(db);
  await sql`
    CREATE TRIGGER token_usage_rollup_delete AFTER DELETE ON public.token_usage
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tokenboard.enqueue_usage_rollup()`.execute(db);

  const measures = sql`
      calls bigint NOT NULL DEFAULT 0,
      failures bigint NOT NULL DEFAULT 0,
      tokens bigint NOT NULL DEFAULT 0,
      input_tokens bigint NOT NULL DEFAULT 0,
      output_tokens bigint NOT NULL DEFAULT 0,
      cost_cents numeric NOT NULL DEFAULT 0,
      below_range bigint NOT NULL DEFAULT 0,
      above_range bigint NOT NULL DEFAULT 0,
      max_tokens integer`;
  // route is nullable in token_usage; NULLS NOT DISTINCT (PostgreSQL 15+) keeps one row per key.
  await sql`CREATE TABLE tokenboard.usage_rollup_15m (bucket timestamptz NOT NULL, action_type text NOT NULL, route text, model text NOT NULL, ${measures})`.execute(db);
  await sql`CREATE UNIQUE INDEX usage_rollup_15m_key ON tokenboard.usage_rollup_15m (bucket, action_type, route, model) NULLS NOT DISTINCT`.execute(db);
  await sql`CREATE TABLE tokenboard.usage_rollup_day (day date NOT NULL, action_type text NOT NULL, route text, model text NOT NULL, ${measures})`.execute(db);
  await sql`CREATE UNIQUE INDEX usage_rollup_day_key ON tokenboard.usage_rollup_day (day, action_type, route, model) NULLS NOT DISTINCT`.execute(db);

  // Log-scaled token histograms (quarter-octave bins) for approximate percentiles.
  await sql`
    CREATE TABLE tokenboard.usage_hist_15m (
      bucket timestamptz NOT NULL, action_type text NOT NULL, bin smallint NOT NULL, calls bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (bucket, action_type, bin)
    )`.execute(db);
  await sql`
    CREATE TABLE tokenboard.usage_hist_day (
      day date NOT NULL, action_type text NOT NULL, bin smallint NOT NULL, calls bigint NOT NULL DEFAULT 0,
      PRIMARY KEY (day, action_type, bin)
    )`.execute(db);

  // Per user, UTC day and action type: user rankings, spikes and monthly reports.
  await sql`
    CREATE TABLE tokenboard.user_usage_day (
      day date NOT NULL, user_id uuid NOT NULL, action_type text NOT NULL,
      calls bigint NOT NULL DEFAULT 0, failures bigint NOT NULL DEFAULT 0, tokens bigint NOT NULL DEFAULT 0,
      cost_cents numeric NOT NULL DEFAULT 0,
      PRIMARY KEY (day, user_id, action_type)
    )`.execute(db);
  await sql`CREATE INDEX user_usage_day_user_idx ON tokenboard.user_usage_day (user_id, day)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS token_usage_rollup_insert ON public.token_usage`.execute(db);
  await sql`DROP TRIGGER IF EXISTS token_usage_rollup_update ON public.token_usage`.execute(db);
  await sql`DROP TRIGGER IF EXISTS token_usage_rollup_delete ON public.token_usage`.execute(db);
  await sql`DROP FUNCTION IF EXISTS tokenboard.enqueue_usage_rollup()`.execute(db);
  for (const table of ["user_usage_day", "usage_hist_day", "usage_hist_15m", "usage_rollup_day", "usage_rollup_15m", "usage_rollup_queue"]) {
    await sql`DROP TABLE IF EXISTS ${sql.table(`tokenboard.${table}`)}`.execute(db);
  }
}
