import { sql, type Kysely } from "kysely";

/**
 * tokenboard.ledger_write_batch: several adjustments in one statement and one transaction —
 * each exactly what tokenboard.ledger_write_entry (0011) does for one with `p_balance_before`
 * NULL (take the user's lock, then write only for a new key, a user without open expiring
 * grants and an allowed result), called in turn. The arrays are the calls' arguments, one
 * element per adjustment; the answer is one row per adjustment that was written, with its
 * 1-based position in the arrays. Positions without a row wrote nothing: the caller takes the
 * general path for them (as for ledger_write_entry's empty answer).
 *
 * The users' locks are taken in user id order, so two batches (or a batch and a single
 * adjustment, which takes one lock) never wait for each other in a cycle. An adjustment later
 * in the batch sees the writes of the ones before it (same transaction), so a user twice in
 * a batch is charged twice in order, and a key twice is written once. Any error (a key raced
 * by another user's adjustment, a constraint) rolls the whole batch back; the caller then
 * runs its adjustments one by one (app/models/ledger-batch.server.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION tokenboard.ledger_write_batch(
      p_user_ids uuid[], p_kinds text[], p_amounts bigint[], p_reasons text[], p_idempotency_keys text[],
      p_actor_ids uuid[], p_actor_labels text[], p_ips text[], p_allow_negative boolean[]
    ) RETURNS TABLE (ord integer, entry tokenboard.ledger_entries) LANGUAGE plpgsql VOLATILE AS $fn$
    DECLARE
      i integer;
    BEGIN
      FOR i IN SELECT s.i FROM generate_subscripts(p_user_ids, 1) AS s(i) ORDER BY p_user_ids[s.i], s.i LOOP
        RETURN QUERY
        SELECT i, e FROM tokenboard.ledger_write_entry(p_user_ids[i], p_kinds[i], p_amounts[i], p_reasons[i], p_idempotency_keys[i],
          p_actor_ids[i], p_actor_labels[i], p_ips[i], p_allow_negative[i], NULL, NULL, NULL, NULL, NULL) AS e;
      END LOOP;
    END
    $fn$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS tokenboard.ledger_write_batch(uuid[], text[], bigint[], text[], text[], uuid[], text[], text[], boolean[])`.execute(db);
}
