import { sql, type Kysely } from "kysely";

/**
 * tokenboard.ledger_write_entry: the one statement that writes a ledger entry, the user's new
 * balance and the audit row, as a server-side function so that an adjustment is one round trip.
 *
 * * `p_balance_before` NULL — the common case of an adjustment, whole: take the user's lock
 *   (the same advisory lock as app/models/ledger.server.ts lockUser), then, only for a new key,
 *   a user without open expiring grants and an allowed result (`p_allow_negative` or a balance
 *   after ≥ 0), write. Called on its own it is its own transaction: the lock is held until the
 *   commit, which happens in the server without another round trip. Answers no row when any
 *   condition does not hold; nothing was written and the caller takes the general path.
 * * `p_balance_before` given — the caller holds the lock and made every check in its own
 *   transaction (expiries, grant consumption, usage charges): write unconditionally.
 *
 * PL/pgSQL runs each statement with a fresh snapshot (READ COMMITTED, VOLATILE), so the write
 * that follows the lock sees every earlier holder's commit.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE OR REPLACE FUNCTION tokenboard.ledger_write_entry(
      p_user_id uuid, p_kind text, p_amount bigint, p_reason text, p_idempotency_key text,
      p_actor_id uuid, p_actor_label text, p_ip text, p_allow_negative boolean, p_balance_before bigint,
      p_expires_at timestamptz, p_remaining bigint, p_usage_id uuid, p_expired_entry_id bigint
    ) RETURNS SETOF tokenboard.ledger_entries LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
      IF p_balance_before IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('ledger:' || p_user_id::text, 0));
      END IF;
      RETURN QUERY
      WITH cur AS (
        SELECT p_balance_before AS balance WHERE p_balance_before IS NOT NULL
        UNION ALL
        SELECT COALESCE((SELECT b.balance FROM tokenboard.token_balances b WHERE b.user_id = p_user_id), 0)
        WHERE p_balance_before IS NULL
          AND NOT EXISTS (SELECT 1 FROM tokenboard.ledger_entries l WHERE l.idempotency_key = p_idempotency_key)
          AND NOT EXISTS (SELECT 1 FROM tokenboard.ledger_entries l WHERE l.user_id = p_user_id AND l.remaining > 0)
      ), entry AS (
        INSERT INTO tokenboard.ledger_entries (user_id, kind, amount, balance_after, reason, actor_id, actor_label, idempotency_key, expires_at, remaining, forced, usage_id, expired_entry_id)
        SELECT p_user_id, p_kind, p_amount, cur.balance + p_amount, p_reason, p_actor_id, p_actor_label, p_idempotency_key,
               p_expires_at, p_remaining, cur.balance + p_amount < 0, p_usage_id, p_expired_entry_id
        FROM cur WHERE p_allow_negative OR cur.balance + p_amount >= 0
        RETURNING *
      ), new_balance AS (
        INSERT INTO tokenboard.token_balances (user_id, balance) SELECT e.user_id, e.balance_after FROM entry e
        ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance, updated_at = now() RETURNING 1
      ), audit AS (
        INSERT INTO tokenboard.audit_log (actor_id, actor_label, action, target_type, target_id, before, after, reason, ip)
        SELECT p_actor_id, p_actor_label, 'ledger.' || e.kind, 'user', e.user_id::text, jsonb_build_object('balance', cur.balance),
               jsonb_build_object('balance', e.balance_after, 'amount', e.amount, 'entry_id', e.id) || CASE WHEN e.forced THEN '{"forced": true}'::jsonb ELSE '{}'::jsonb END,
               e.reason, p_ip
        FROM entry e, cur RETURNING 1
      )
      SELECT entry.* FROM entry, new_balance, audit;
    END
    $fn$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP FUNCTION IF EXISTS tokenboard.ledger_write_entry(uuid, text, bigint, text, text, uuid, text, text, boolean, bigint, timestamptz, bigint, uuid, bigint)`.execute(db);
}
