import { sql, type Kysely } from "kysely";

/**
 * Entries adopted from the seed's token_transactions carry no caller's idempotency key: their
 * uniqueness is their source row (source_ref, unique since 0024), as a system entry's is its grant
 * or usage row. The caller-key CHECK (0019, widened by 0026 for corrections) admits them.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.ledger_entries DROP CONSTRAINT ledger_entries_caller_key`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries ADD CONSTRAINT ledger_entries_caller_key CHECK (idempotency_key IS NOT NULL OR kind IN ('expiry', 'usage', 'correction') OR source_ref IS NOT NULL)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  // Adopted entries (daily usage charges too) get their source row as key, which no caller sends:
  // the CHECK of 0026 below and 0019's down (a key on every entry without a usage row) then hold.
  await sql`UPDATE tokenboard.ledger_entries SET idempotency_key = source_ref WHERE idempotency_key IS NULL AND source_ref IS NOT NULL`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries DROP CONSTRAINT ledger_entries_caller_key`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries ADD CONSTRAINT ledger_entries_caller_key CHECK (idempotency_key IS NOT NULL OR kind IN ('expiry', 'usage', 'correction'))`.execute(db);
}
