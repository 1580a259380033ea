import { sql, type Kysely } from "kysely";

/**
 * tokenboard's own tables live in the `tokenboard` schema so that they can never collide
 * with tables of the app whose database we adopt. Connections use
 * search_path = tokenboard, public.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE SCHEMA IF NOT EXISTS tokenboard`.execute(db);

  await sql`
    CREATE TABLE tokenboard.staff_users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email text NOT NULL,
      name text NOT NULL DEFAULT '',
      password_hash text NOT NULL,
      role text NOT NULL CHECK (role IN ('admin', 'support', 'analyst')),
      timezone text NOT NULL DEFAULT 'UTC',
      disabled_at timestamptz,
      failed_logins integer NOT NULL DEFAULT 0,
      locked_until timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  // Logins look staff up by email, case-insensitively.
  await sql`CREATE UNIQUE INDEX staff_users_email_key ON tokenboard.staff_users (lower(email))`.execute(db);

  await sql`
    CREATE TABLE tokenboard.staff_sessions (
      id text PRIMARY KEY,
      staff_id uuid NOT NULL REFERENCES tokenboard.staff_users(id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      ip text,
      user_agent text
    )`.execute(db);
  await sql`CREATE INDEX staff_sessions_staff_idx ON tokenboard.staff_sessions (staff_id)`.execute(db);

  // Failed logins per email and per address, for throttling that also covers unknown emails.
  await sql`
    CREATE TABLE tokenboard.login_attempts (
      id bigserial PRIMARY KEY,
      email text NOT NULL,
      ip text,
      succeeded boolean NOT NULL,
      attempted_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX login_attempts_email_idx ON tokenboard.login_attempts (lower(email), attempted_at DESC)`.execute(db);

  await sql`
    CREATE TABLE tokenboard.api_keys (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL,
      scope text NOT NULL CHECK (scope IN ('ingest', 'ledger')),
      key_hash text NOT NULL UNIQUE,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    )`.execute(db);

  await sql`
    CREATE TABLE tokenboard.audit_log (
      id bigserial PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      actor_id uuid,
      actor_label text NOT NULL,
      action text NOT NULL,
      target_type text NOT NULL,
      target_id text,
      before jsonb,
      after jsonb,
      reason text,
      ip text
    )`.execute(db);
  await sql`CREATE INDEX audit_log_at_idx ON tokenboard.audit_log (at DESC, id DESC)`.execute(db);
  await sql`CREATE INDEX audit_log_actor_idx ON tokenboard.audit_log (actor_id, at DESC)`.execute(db);
  await sql`CREATE INDEX audit_log_target_idx ON tokenboard.audit_log (target_type, target_id, at DESC)`.execute(db);
  // Append-only: the database itself refuses to change or remove history.
  await sql`
    CREATE FUNCTION tokenboard.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON tokenboard.audit_log
    FOR EACH ROW EXECUTE FUNCTION tokenboard.refuse_change()`.execute(db);

  await sql`
    CREATE TABLE tokenboard.override_history (
      id bigserial PRIMARY KEY,
      action_type text NOT NULL,
      old_value integer,
      new_value integer,
      changed_by uuid,
      changed_by_label text NOT NULL,
      reason text NOT NULL,
      changed_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX override_history_type_idx ON tokenboard.override_history (action_type, changed_at DESC)`.execute(db);
  await sql`
    CREATE TRIGGER override_history_append_only BEFORE UPDATE OR DELETE ON tokenboard.override_history
    FOR EACH ROW EXECUTE FUNCTION tokenboard.refuse_change()`.execute(db);

  // Users of the served app as tokenboard knows them (email for search). The usage and
  // ledger data may name user ids that are not here; they are users all the same.
  await sql`
    CREATE TABLE tokenboard.app_users (
      user_id uuid PRIMARY KEY,
      email text,
      display_name text,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX app_users_email_idx ON tokenboard.app_users (lower(email) text_pattern_ops)`.execute(db);

  // Ledger: append-only entries; balances change only with an entry, in one transaction.
  await sql`
    CREATE TABLE tokenboard.token_balances (
      user_id uuid PRIMARY KEY,
      balance bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE tokenboard.ledger_entries (
      id bigserial PRIMARY KEY,
      user_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('grant', 'deduct', 'usage', 'purchase', 'expiry', 'correction')),
      amount bigint NOT NULL,
      balance_after bigint NOT NULL,
      reason text,
      actor_id uuid,
      actor_label text NOT NULL,
      idempotency_key text NOT NULL UNIQUE,
      expires_at timestamptz,
      remaining bigint,
      forced boolean NOT NULL DEFAULT false,
      usage_id uuid UNIQUE,
      expired_entry_id bigint,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (balance_after >= 0 OR forced)
    )`.execute(db);
  // The support view pages one user's ledger, newest first.
  await sql`CREATE INDEX ledger_entries_user_idx ON tokenboard.ledger_entries (user_id, id DESC)`.execute(db);
  // The expiry job finds grants whose expiry has passed and that still have tokens left.
  await sql`CREATE INDEX ledger_entries_expiring_idx ON tokenboard.ledger_entries (expires_at) WHERE remaining > 0`.execute(db);
  await sql`
    CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON tokenboard.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION tokenboard.refuse_change()`.execute(db);

  await sql`
    CREATE TABLE tokenboard.settings (
      key text PRIMARY KEY,
      value jsonb NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP SCHEMA IF EXISTS tokenboard CASCADE`.execute(db);
}
