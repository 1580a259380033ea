import { sql, type Kysely } from "kysely";

/**
 * The money views (Billing page, roll-forward, running balance) read the ledger by time: the
 * entries of a range, or every entry before an instant. With the kind, owner and amount in the
 * index, those reads are index-only scans of the range they need.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS ledger_entries_created_idx ON tokenboard.ledger_entries (created_at) INCLUDE (user_id, kind, amount)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS tokenboard.ledger_entries_created_idx`.execute(db);
}
