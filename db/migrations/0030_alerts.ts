import { sql, type Kysely } from "kysely";

/**
 * Alerts (issue 26): an outbox written in the same transaction as what caused an alert, sent by
 * a job (so a slow receiver never holds up ingest or the ledger), and the per-user balance state
 * that makes a balance alert fire once per crossing rather than once per usage row.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE tokenboard.alert_outbox (
      delivery_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id uuid NOT NULL,
      channel_key text NOT NULL,
      type text NOT NULL CHECK (type IN ('balance.low', 'balance.recovered', 'outlier.flagged', 'spend.threshold', 'ingest.silent', 'drift.detected', 'report.delivered')),
      created_at timestamptz NOT NULL DEFAULT now(),
      user_id uuid,
      payload jsonb NOT NULL,
      channel jsonb NOT NULL,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'dead')),
      attempts integer NOT NULL DEFAULT 0,
      next_attempt_at timestamptz NOT NULL DEFAULT now(),
      last_error text,
      last_status_code integer,
      sent_at timestamptz,
      dead_after timestamptz NOT NULL DEFAULT now() + interval '25 hours',
      dedupe_key text,
      UNIQUE (id, channel_key),
      UNIQUE (dedupe_key, channel_key)
    )`.execute(db);
  // The delivery job reads only rows still owed, oldest due first.
  await sql`CREATE INDEX alert_outbox_due_idx ON tokenboard.alert_outbox (next_attempt_at) WHERE status IN ('pending', 'failed')`.execute(db);
  await sql`CREATE INDEX alert_outbox_created_idx ON tokenboard.alert_outbox (created_at DESC)`.execute(db);
  await sql`
    CREATE TABLE tokenboard.alert_balance_state (
      user_id uuid PRIMARY KEY,
      below boolean NOT NULL,
      threshold bigint NOT NULL,
      balance bigint NOT NULL,
      last_entry_id bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE tokenboard.alert_balance_thresholds (
      user_id uuid PRIMARY KEY,
      threshold bigint NOT NULL CHECK (threshold >= 0),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE tokenboard.alert_rules (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      type text NOT NULL CHECK (type IN ('spend.threshold', 'ingest.silent')),
      name text NOT NULL,
      params jsonb NOT NULL,
      channel text NOT NULL DEFAULT 'all' CHECK (channel IN ('all', 'webhook', 'slack', 'email')),
      enabled boolean NOT NULL DEFAULT true,
      muted_until timestamptz,
      created_by uuid REFERENCES tokenboard.staff_users (id) ON DELETE SET NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  // Monthly report subscriptions, and each report as delivered (the bytes, so a later
  // restatement can be compared with what was sent).
  await sql`
    CREATE TABLE tokenboard.report_subscriptions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL,
      zone text NOT NULL,
      channel text NOT NULL DEFAULT 'all' CHECK (channel IN ('all', 'webhook', 'slack', 'email')),
      created_by uuid REFERENCES tokenboard.staff_users (id) ON DELETE SET NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE tokenboard.report_deliveries (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      subscription_id uuid NOT NULL REFERENCES tokenboard.report_subscriptions (id) ON DELETE CASCADE,
      month text NOT NULL,
      zone text NOT NULL,
      csv bytea NOT NULL,
      bytes integer NOT NULL,
      sha256 text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (subscription_id, month)
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE IF EXISTS tokenboard.report_deliveries`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.report_subscriptions`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.alert_rules`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.alert_balance_thresholds`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.alert_balance_state`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.alert_outbox`.execute(db);
}
