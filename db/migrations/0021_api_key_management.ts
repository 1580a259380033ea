import { sql, type Kysely } from "kysely";

/**
 * API keys managed in the app (issue 23): a read-only scope, the key's visible prefix, who
 * created it, when it was last used, and an expiry for rotation overlap. Lookups stay on the
 * unique index of key_hash; the expiry is checked on the row found.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.api_keys DROP CONSTRAINT api_keys_scope_check`.execute(db);
  await sql`ALTER TABLE tokenboard.api_keys ADD CONSTRAINT api_keys_scope_check CHECK (scope IN ('ingest', 'ledger', 'read'))`.execute(db);
  await sql`
    ALTER TABLE tokenboard.api_keys
      ADD COLUMN prefix text,
      ADD COLUMN created_by uuid REFERENCES tokenboard.staff_users (id) ON DELETE SET NULL,
      ADD COLUMN last_used_at timestamptz,
      ADD COLUMN expires_at timestamptz,
      ADD COLUMN replaced_by uuid REFERENCES tokenboard.api_keys (id) ON DELETE SET NULL`.execute(db);
  await sql`CREATE INDEX api_keys_created_idx ON tokenboard.api_keys (created_at DESC)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS tokenboard.api_keys_created_idx`.execute(db);
  await sql`
    ALTER TABLE tokenboard.api_keys
      DROP COLUMN replaced_by, DROP COLUMN expires_at, DROP COLUMN last_used_at, DROP COLUMN created_by, DROP COLUMN prefix`.execute(db);
  await sql`DELETE FROM tokenboard.api_keys WHERE scope = 'read'`.execute(db);
  await sql`ALTER TABLE tokenboard.api_keys DROP CONSTRAINT api_keys_scope_check`.execute(db);
  await sql`ALTER TABLE tokenboard.api_keys ADD CONSTRAINT api_keys_scope_check CHECK (scope IN ('ingest', 'ledger'))`.execute(db);
}
