import { sql, type Kysely } from "kysely";

/**
 * Flags written by the outlier job (never at page load). One row per finding; `dedupe_key`
 * makes re-runs idempotent (the same finding is not flagged twice).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE tokenboard.outlier_flags (
      id bigserial PRIMARY KEY,
      rule text NOT NULL,
      dedupe_key text NOT NULL UNIQUE,
      action_type text,
      route text,
      user_id uuid,
      usage_id uuid,
      day date,
      observed numeric,
      expected_low numeric,
      expected_high numeric,
      message text NOT NULL,
      details jsonb NOT NULL DEFAULT '{}'::jsonb,
      occurred_at timestamptz NOT NULL,
      detected_at timestamptz NOT NULL DEFAULT now(),
      status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged')),
      acknowledged_by uuid,
      acknowledged_at timestamptz,
      ack_note text
    )`.execute(db);
  // The outliers page filters by rule/status and sorts by time; the user view lists one user's flags.
  await sql`CREATE INDEX outlier_flags_rule_idx ON tokenboard.outlier_flags (rule, status, occurred_at DESC)`.execute(db);
  await sql`CREATE INDEX outlier_flags_occurred_idx ON tokenboard.outlier_flags (occurred_at DESC, id DESC)`.execute(db);
  await sql`CREATE INDEX outlier_flags_user_idx ON tokenboard.outlier_flags (user_id, occurred_at DESC) WHERE user_id IS NOT NULL`.execute(db);
  await sql`CREATE INDEX outlier_flags_type_idx ON tokenboard.outlier_flags (action_type, occurred_at DESC)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS tokenboard.outlier_flags`.execute(db);
}
