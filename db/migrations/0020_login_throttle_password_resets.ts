import { sql, type Kysely } from "kysely";

/**
 * Issue 23. login_throttles replaces the per-email lock (which let anyone lock any account out):
 * failures are counted per (email, client address), so only that pair waits, with growing
 * delays; an admin unlock or the env bootstrap deletes an email's rows. staff_password_resets
 * holds admin-issued one-time reset links, by the sha256 of their token only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE tokenboard.login_throttles (
      email text NOT NULL,
      ip text NOT NULL,
      failures integer NOT NULL,
      last_failure_at timestamptz NOT NULL,
      blocked_until timestamptz,
      PRIMARY KEY (email, ip)
    )`.execute(db);
  await sql`
    CREATE TABLE tokenboard.staff_password_resets (
      token_hash text PRIMARY KEY,
      staff_id uuid NOT NULL REFERENCES tokenboard.staff_users(id) ON DELETE CASCADE,
      created_by uuid REFERENCES tokenboard.staff_users(id) ON DELETE SET NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      used_at timestamptz
    )`.execute(db);
  await sql`CREATE INDEX staff_password_resets_staff_idx ON tokenboard.staff_password_resets (staff_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TABLE tokenboard.staff_password_resets`.execute(db);
  await sql`DROP TABLE tokenboard.login_throttles`.execute(db);
}
