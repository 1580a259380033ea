import { sql, type Kysely } from "kysely";

/**
 * Idempotency keys belong to callers only. The system's own entries (expiries, usage charges)
 * carried keys such as `expiry:<id>` in the same unique column, so a caller could take one
 * first and make that expiry fail forever. They now carry no key; their uniqueness is their
 * own: one expiry per grant, one charge per usage row (usage_id is already unique).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.ledger_entries ALTER COLUMN idempotency_key DROP NOT NULL`.execute(db);
  await sql`
    UPDATE tokenboard.ledger_entries SET idempotency_key = NULL
    WHERE (kind = 'expiry' AND idempotency_key = 'expiry:' || expired_entry_id)
       OR (kind = 'usage' AND idempotency_key = 'usage:' || usage_id)`.execute(db);
  await sql`CREATE UNIQUE INDEX ledger_entries_one_expiry_per_grant ON tokenboard.ledger_entries (expired_entry_id) WHERE kind = 'expiry'`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries ADD CONSTRAINT ledger_entries_caller_key CHECK (idempotency_key IS NOT NULL OR kind IN ('expiry', 'usage'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.ledger_entries DROP CONSTRAINT ledger_entries_caller_key`.execute(db);
  await sql`DROP INDEX tokenboard.ledger_entries_one_expiry_per_grant`.execute(db);
  await sql`
    UPDATE tokenboard.ledger_entries SET idempotency_key = kind || ':' || COALESCE(expired_entry_id::text, usage_id::text)
    WHERE idempotency_key IS NULL`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries ALTER COLUMN idempotency_key SET NOT NULL`.execute(db);
}
