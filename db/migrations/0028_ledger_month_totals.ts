import { sql, type Kysely } from "kysely";

/**
 * The money views read the ledger by time. Two structures:
 * - ledger_month_totals: Σ amount and entries per (UTC month, owner, kind), kept by triggers on
 *   the ledger, so a balance at any instant is the months before the UTC month boundary nearest
 *   to it plus or minus the entries between that boundary and the instant (at most 14 hours in
 *   any zone): the roll-forward reads totals, not every entry before the month.
 * - an index by time carrying owner, kind and amount: a range's entries as an index-only scan.
 * Entries are append-only; an UPDATE that moves one (its amount, time, owner or kind) moves its
 * totals too, so no writer can make them disagree.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX IF NOT EXISTS ledger_entries_created_idx ON tokenboard.ledger_entries (created_at) INCLUDE (user_id, kind, amount)`.execute(db);
  await sql`
    CREATE TABLE tokenboard.ledger_month_totals (
      month date NOT NULL,
      user_id uuid NOT NULL,
      kind text NOT NULL,
      amount bigint NOT NULL,
      entries bigint NOT NULL,
      PRIMARY KEY (month, user_id, kind)
    )`.execute(db);
  await sql`
    INSERT INTO tokenboard.ledger_month_totals (month, user_id, kind, amount, entries)
    SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date, user_id, kind, sum(amount), count(*)
    FROM tokenboard.ledger_entries GROUP BY 1, 2, 3`.execute(db);
  // Per statement: a batch of entries is one upsert, in key order (no lock cycles between writers).
  await sql`
    CREATE FUNCTION tokenboard.ledger_month_totals_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      INSERT INTO tokenboard.ledger_month_totals AS t (month, user_id, kind, amount, entries)
      SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date, user_id, kind, sum(amount), count(*)
      FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
      ON CONFLICT (month, user_id, kind) DO UPDATE SET amount = t.amount + excluded.amount, entries = t.entries + excluded.entries;
      RETURN NULL;
    END $fn$`.execute(db);
  await sql`
    CREATE TRIGGER ledger_entries_month_totals_insert AFTER INSERT ON tokenboard.ledger_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tokenboard.ledger_month_totals_insert()`.execute(db);
  // Fires only for UPDATEs that name these columns: consuming a grant (remaining) costs nothing.
  await sql`
    CREATE FUNCTION tokenboard.ledger_month_totals_move() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      UPDATE tokenboard.ledger_month_totals SET amount = amount - OLD.amount, entries = entries - 1
      WHERE month = date_trunc('month', OLD.created_at AT TIME ZONE 'UTC')::date AND user_id = OLD.user_id AND kind = OLD.kind;
      DELETE FROM tokenboard.ledger_month_totals
      WHERE month = date_trunc('month', OLD.created_at AT TIME ZONE 'UTC')::date AND user_id = OLD.user_id AND kind = OLD.kind AND entries = 0;
      INSERT INTO tokenboard.ledger_month_totals AS t (month, user_id, kind, amount, entries)
      VALUES (date_trunc('month', NEW.created_at AT TIME ZONE 'UTC')::date, NEW.user_id, NEW.kind, NEW.amount, 1)
      ON CONFLICT (month, user_id, kind) DO UPDATE SET amount = t.amount + excluded.amount, entries = t.entries + 1;
      RETURN NULL;
    END $fn$`.execute(db);
  await sql`
    CREATE TRIGGER ledger_entries_month_totals_move AFTER UPDATE OF amount, created_at, user_id, kind ON tokenboard.ledger_entries
    FOR EACH ROW EXECUTE FUNCTION tokenboard.ledger_month_totals_move()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP TRIGGER IF EXISTS ledger_entries_month_totals_move ON tokenboard.ledger_entries`.execute(db);
  await sql`DROP TRIGGER IF EXISTS ledger_entries_month_totals_insert ON tokenboard.ledger_entries`.execute(db);
  await sql`DROP FUNCTION IF EXISTS tokenboard.ledger_month_totals_move()`.execute(db);
  await sql`DROP FUNCTION IF EXISTS tokenboard.ledger_month_totals_insert()`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.ledger_month_totals`.execute(db);
  await sql`DROP INDEX IF EXISTS tokenboard.ledger_entries_created_idx`.execute(db);
}
