import { sql, type Kysely } from "kysely";

/**
 * Usage charging (decision 016, docs/ledger.md "Charging").
 *
 * - Queue rows carry the id of their usage row, so a charge can name the rows it charged and a
 *   correction (update, delete) can tell a row charged before from a new one. Rows queued before
 *   this migration carry none and are not charged (nothing was charged before it either).
 * - An index on the queue's user_id: an exact balance reads the queued rows of a payer's
 *   consumers, and the queue can hold up to the ingest bound (100,000 rows).
 * - tokenboard.pending_charges: what a consumed queue batch owes, per payer, consumer and kind
 *   ('usage' for rows first seen, 'correction' for rows seen before), staged in the rollup
 *   statement and applied to the ledger under the payer's lock right after.
 * - tokenboard.usage_charge_traces: for each charge entry, the usage rows it charged.
 * - Corrections are system entries like usage and expiry: they carry no caller key.
 *
 * Overdraft needs no change of the balance CHECK: ledger_write_entry already marks an entry that
 * leaves the balance below zero `forced`, which a usage charge may do by rule.
 */

const SHARED = sql.raw("created_at, user_id, action_type, route, model_used, success, tokens_used, input_tokens, output_tokens");
const SHARED_U = sql.raw("u.created_at, u.user_id, u.action_type, u.route, u.model_used, u.success, u.tokens_used, u.input_tokens, u.output_tokens");
const COST = sql`tokenboard.usage_cost_cents(u.calculated_cost_cents, u.audio_seconds, u.input_tokens, u.output_tokens,
  p.price_per_unit, p.input_price_per_1m, p.output_price_per_1m)`;

function enqueueFunction(withId: boolean) {
  const columns = withId ? sql`sign, ${SHARED}, cost_cents, usage_id` : sql`sign, ${SHARED}, cost_cents`;
  const rows = (sign: number, table: string) =>
    sql`SELECT ${sql.lit(sign)}, ${SHARED_U}, ${COST}${withId ? sql`, u.id` : sql``} FROM ${sql.raw(table)} u LEFT JOIN public.ai_model_pricing p ON p.model_name = u.model_used`;
  return sql`
    CREATE OR REPLACE FUNCTION tokenboard.enqueue_usage_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO tokenboard.usage_rollup_queue (${columns}) ${rows(-1, "old_rows")};
      END IF;
      IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO tokenboard.usage_rollup_queue (${columns}) ${rows(1, "new_rows")};
      END IF;
      RETURN NULL;
    END $$`;
}


/**
 * Who pays a consumer's usage: the admin of a household with shared tokens the consumer is an
 * active member of (allowed to share), else the consumer. Staging and the exact balance both
 * ask this, so a balance counts queued rows exactly as they will be staged.
 */
const PAYER_FUNCTION = sql`
  CREATE FUNCTION tokenboard.usage_payer(p_consumer uuid) RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT COALESCE((
      SELECT h.admin_user_id FROM public.household_members m JOIN public.households h ON h.id = m.household_id
      WHERE m.user_id = p_consumer AND m.status = 'active' AND m.allow_shared_tokens IS TRUE AND h.shared_tokens_enabled IS TRUE
      ORDER BY m.joined_at DESC NULLS LAST, m.id LIMIT 1), p_consumer)
  $$`;

/** The reason of a charge's entry, from the pending_charges row `r` (replaced by the alias in use). */
const reasonOf = (alias: string) => REASON.replaceAll("r.", `${alias}.`);
const REASON = `CASE WHEN r.kind = 'usage'
    THEN 'usage: ' || r.rows || CASE WHEN r.rows = 1 THEN ' call, ' ELSE ' calls, ' END || to_char(-r.amount, 'FM999,999,999,999,990') || ' tokens'
    ELSE 'corrected ' || r.rows || CASE WHEN r.rows = 1 THEN ' usage row: ' ELSE ' usage rows: ' END
         || CASE WHEN r.amount > 0 THEN 'refund ' ELSE 'charge ' END || to_char(abs(r.amount), 'FM999,999,999,999,990') || ' tokens'
  END || CASE WHEN r.consumer_id <> r.payer_id THEN ' (pool member ' || r.consumer_id || ')' ELSE '' END`;

/**
 * Applies staged charges to the ledger, up to p_limit, in one transaction. It takes staged rows
 * `FOR UPDATE SKIP LOCKED` (concurrent runs share them and never apply one twice), then the
 * ledger lock of every payer among them (app/models/ledger.server.ts lockUser's), in payer order.
 * Then, in a statement that starts after the locks (so it sees every earlier holder's commit):
 * the payers with no grant left to consume or expire, all at once — per staged row its entry
 * with the running balance, the balance, the audit row (as ledger_write_entry writes them), its
 * trace, and the staged row deleted. The other payers row by row: the expiry of what lapsed, the
 * grants the row consumes (soonest expiry, then the oldest: planDebit in app/domain/ledger.ts),
 * what is left from the permanent part, below zero if need be (a charge is never refused), and
 * the entry through ledger_write_entry.
 */
const APPLY_FUNCTION = sql.raw(`
  CREATE FUNCTION tokenboard.apply_pending_charges(p_limit integer) RETURNS TABLE (entries integer, payers integer)
  LANGUAGE plpgsql VOLATILE AS $fn$
  DECLARE
    ids bigint[];
    r record;
    g record;
    cur bigint;
    owed bigint;
    take bigint;
    entry_id bigint;
    last_payer uuid := NULL;
    n_entries integer := 0;
    n_payers integer := 0;
  BEGIN
    SELECT array_agg(x.id) INTO ids FROM (
      SELECT p.id FROM tokenboard.pending_charges p ORDER BY p.payer_id, p.id LIMIT p_limit FOR UPDATE SKIP LOCKED) x;
    IF ids IS NULL THEN
      RETURN QUERY SELECT 0, 0;
      RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('ledger:' || x.payer_id::text, 0))
    FROM (SELECT DISTINCT p.payer_id FROM tokenboard.pending_charges p WHERE p.id = ANY(ids) ORDER BY p.payer_id) x;

    WITH simple AS MATERIALIZED (
      SELECT pc.*, ${reasonOf("pc")} AS reason, nextval('tokenboard.ledger_entries_id_seq'::regclass) AS entry_id
      FROM tokenboard.pending_charges pc
      WHERE pc.id = ANY(ids) AND NOT EXISTS (SELECT 1 FROM tokenboard.ledger_entries l WHERE l.user_id = pc.payer_id AND l.remaining > 0)
    ), running AS MATERIALIZED (
      SELECT s.*, COALESCE(b.balance, 0) + sum(s.amount) OVER (PARTITION BY s.payer_id ORDER BY s.entry_id) AS after
      FROM simple s LEFT JOIN tokenboard.token_balances b ON b.user_id = s.payer_id
    ), written AS (
      INSERT INTO tokenboard.ledger_entries (id, user_id, kind, amount, balance_after, reason, actor_id, actor_label, idempotency_key, forced, consumer_id)
      SELECT u.entry_id, u.payer_id, u.kind, u.amount, u.after, u.reason, NULL, 'system', NULL, u.after < 0,
             CASE WHEN u.consumer_id <> u.payer_id THEN u.consumer_id END
      FROM running u ORDER BY u.entry_id
    ), balances AS (
      INSERT INTO tokenboard.token_balances (user_id, balance)
      SELECT DISTINCT ON (u.payer_id) u.payer_id, u.after FROM running u ORDER BY u.payer_id, u.entry_id DESC
      ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance, updated_at = now()
    ), audit AS (
      INSERT INTO tokenboard.audit_log (actor_id, actor_label, action, target_type, target_id, before, after, reason, ip)
      SELECT NULL, 'system', 'ledger.' || u.kind, 'user', u.payer_id::text, jsonb_build_object('balance', u.after - u.amount),
             jsonb_build_object('balance', u.after, 'amount', u.amount, 'entry_id', u.entry_id) || CASE WHEN u.after < 0 THEN '{"forced": true}'::jsonb ELSE '{}'::jsonb END,
             u.reason, NULL
      FROM running u ORDER BY u.entry_id
    ), traces AS (
      INSERT INTO tokenboard.usage_charge_traces (entry_id, consumer_id, usage_ids, first_at, last_at, first_queue_id, last_queue_id)
      SELECT u.entry_id, u.consumer_id, u.usage_ids, u.first_at, u.last_at, u.first_queue_id, u.last_queue_id FROM running u
    ), gone AS (
      DELETE FROM tokenboard.pending_charges p WHERE p.id IN (SELECT u.id FROM running u)
    )
    SELECT count(*)::int, count(DISTINCT u.payer_id)::int INTO n_entries, n_payers FROM running u;

    FOR r IN SELECT p.*, ${reasonOf("p")} AS reason FROM tokenboard.pending_charges p WHERE p.id = ANY(ids) ORDER BY p.payer_id, p.id LOOP
      IF last_payer IS DISTINCT FROM r.payer_id THEN
        last_payer := r.payer_id;
        n_payers := n_payers + 1;
        FOR g IN SELECT l.id, l.remaining FROM tokenboard.ledger_entries l
                 WHERE l.user_id = r.payer_id AND l.remaining > 0 AND l.expires_at <= now() ORDER BY l.expires_at, l.id LOOP
          cur := COALESCE((SELECT b.balance FROM tokenboard.token_balances b WHERE b.user_id = r.payer_id), 0);
          UPDATE tokenboard.ledger_entries SET remaining = 0 WHERE id = g.id;
          PERFORM tokenboard.ledger_write_entry(r.payer_id, 'expiry', -g.remaining, 'grant #' || g.id || ' expired', NULL::text,
            NULL::uuid, 'system', NULL::text, true, cur, NULL::timestamptz, NULL::bigint, NULL::uuid, g.id);
        END LOOP;
      END IF;
      cur := COALESCE((SELECT b.balance FROM tokenboard.token_balances b WHERE b.user_id = r.payer_id), 0);
      IF r.amount < 0 THEN
        owed := -r.amount;
        FOR g IN SELECT l.id, l.remaining FROM tokenboard.ledger_entries l
                 WHERE l.user_id = r.payer_id AND l.remaining > 0 ORDER BY l.expires_at, l.id LOOP
          EXIT WHEN owed <= 0;
          take := LEAST(g.remaining, owed);
          UPDATE tokenboard.ledger_entries SET remaining = remaining - take WHERE id = g.id;
          owed := owed - take;
        END LOOP;
      END IF;
      SELECT e.id INTO entry_id FROM tokenboard.ledger_write_entry(r.payer_id, r.kind, r.amount, r.reason,
        NULL::text, NULL::uuid, 'system', NULL::text, true, cur, NULL::timestamptz, NULL::bigint, NULL::uuid, NULL::bigint) e;
      IF r.consumer_id <> r.payer_id THEN
        UPDATE tokenboard.ledger_entries SET consumer_id = r.consumer_id WHERE id = entry_id;
      END IF;
      INSERT INTO tokenboard.usage_charge_traces (entry_id, consumer_id, usage_ids, first_at, last_at, first_queue_id, last_queue_id)
      VALUES (entry_id, r.consumer_id, r.usage_ids, r.first_at, r.last_at, r.first_queue_id, r.last_queue_id);
      DELETE FROM tokenboard.pending_charges WHERE id = r.id;
      n_entries := n_entries + 1;
    END LOOP;
    RETURN QUERY SELECT n_entries, n_payers;
  END
  $fn$`);

/** As in 0017: the app's writes wait until the migration commits, so none runs the old trigger against the new columns. */
const holdAppWrites = sql`LOCK TABLE public.token_usage IN SHARE ROW EXCLUSIVE MODE`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await holdAppWrites.execute(db);
  await sql`ALTER TABLE tokenboard.usage_rollup_queue ADD COLUMN usage_id uuid`.execute(db);
  await sql`CREATE INDEX usage_rollup_queue_user_idx ON tokenboard.usage_rollup_queue (user_id)`.execute(db);
  await enqueueFunction(true).execute(db);
  await sql`
    CREATE TABLE tokenboard.pending_charges (
      id bigserial PRIMARY KEY,
      payer_id uuid NOT NULL,
      consumer_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('usage', 'correction')),
      -- Signed as the ledger entry will be: a charge is negative, a refund positive.
      amount bigint NOT NULL,
      rows integer NOT NULL,
      usage_ids uuid[] NOT NULL,
      first_at timestamptz NOT NULL,
      last_at timestamptz NOT NULL,
      first_queue_id bigint NOT NULL,
      last_queue_id bigint NOT NULL,
      staged_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX pending_charges_payer_idx ON tokenboard.pending_charges (payer_id, id)`.execute(db);
  await sql`
    CREATE TABLE tokenboard.usage_charge_traces (
      entry_id bigint PRIMARY KEY REFERENCES tokenboard.ledger_entries (id),
      consumer_id uuid NOT NULL,
      usage_ids uuid[] NOT NULL,
      first_at timestamptz NOT NULL,
      last_at timestamptz NOT NULL,
      first_queue_id bigint NOT NULL,
      last_queue_id bigint NOT NULL
    )`.execute(db);
  // A usage row is looked up among its consumer's charges whose time span holds its created_at.
  await sql`CREATE INDEX usage_charge_traces_consumer_idx ON tokenboard.usage_charge_traces (consumer_id, first_at)`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries DROP CONSTRAINT ledger_entries_caller_key`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries ADD CONSTRAINT ledger_entries_caller_key CHECK (idempotency_key IS NOT NULL OR kind IN ('expiry', 'usage', 'correction'))`.execute(db);
  // The pool of a member: its household's admin pays.
  await sql`CREATE INDEX IF NOT EXISTS households_admin_idx ON public.households (admin_user_id)`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS household_members_household_idx ON public.household_members (household_id)`.execute(db);
  await PAYER_FUNCTION.execute(db);
  await APPLY_FUNCTION.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await holdAppWrites.execute(db);
  await sql`DROP FUNCTION tokenboard.apply_pending_charges(integer)`.execute(db);
  await sql`DROP FUNCTION tokenboard.usage_payer(uuid)`.execute(db);
  await sql`DROP INDEX IF EXISTS public.household_members_household_idx`.execute(db);
  await sql`DROP INDEX IF EXISTS public.households_admin_idx`.execute(db);
  // Charges of a batch name no usage row: before this migration every keyless entry did, and
  // 0019's down keys entries by their grant or usage row. They keep a key of their own.
  await sql`UPDATE tokenboard.ledger_entries SET idempotency_key = 'charge:' || id
    WHERE idempotency_key IS NULL AND kind IN ('usage', 'correction') AND usage_id IS NULL`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries DROP CONSTRAINT ledger_entries_caller_key`.execute(db);
  await sql`ALTER TABLE tokenboard.ledger_entries ADD CONSTRAINT ledger_entries_caller_key CHECK (idempotency_key IS NOT NULL OR kind IN ('expiry', 'usage'))`.execute(db);
  await sql`DROP TABLE tokenboard.usage_charge_traces`.execute(db);
  await sql`DROP TABLE tokenboard.pending_charges`.execute(db);
  await enqueueFunction(false).execute(db);
  await sql`DROP INDEX tokenboard.usage_rollup_queue_user_idx`.execute(db);
  await sql`ALTER TABLE tokenboard.usage_rollup_queue DROP COLUMN usage_id`.execute(db);
}
