import { sql, type Kysely } from "kysely";

/**
 * Indexes for token operations: every adjustment reads the open expiring grants of one
 * user under its balance lock, and the audit page filters by action.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS ledger_entries_open_grants_idx ON tokenboard.ledger_entries (user_id, expires_at, id) WHERE remaining > 0`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS audit_log_action_idx ON tokenboard.audit_log (action, at DESC)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS tokenboard.audit_log_action_idx`.execute(db);
  await sql`DROP INDEX IF EXISTS tokenboard.ledger_entries_open_grants_idx`.execute(db);
}
