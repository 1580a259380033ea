/**
 * Usage charging (decision 016, docs/ledger.md "Charging"): the SQL that stages what a consumed
 * queue batch owes (inside the rollup statement, so it is atomic with the queue's DELETE), the
 * step that applies staged charges to the ledger, and the reads that count what is not applied
 * yet so that a balance is exact when it is read.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { Database } from "../../db/types";
import { ACTION_TYPES } from "~/domain/action-types";
import { getEnv } from "~/lib/env.server";

/** The action types whose successful calls are charged: the registry's `ai` category. */
export const CHARGED_TYPES: readonly string[] = ACTION_TYPES.filter((t) => t.category === "ai").map((t) => t.name);
const chargedTypes = sql`${[...CHARGED_TYPES]}::text[]`;

/** TOKENBOARD_CHARGE_USAGE: on unless the app charges its users itself. */
export function chargingEnabled(): boolean {
  return getEnv().TOKENBOARD_CHARGE_USAGE === "on";
}

/** A queue-shaped row's charge: the type's override where one is set, else tokens_used; 0 when not chargeable. For reads of a few rows; staging joins the overrides instead. */
const rowCharge = (q: string) => {
  const t = sql.raw(q);
  return sql`CASE WHEN ${t}.success AND ${t}.action_type = ANY(${chargedTypes})
    THEN COALESCE((SELECT o.token_value FROM public.ai_action_token_overrides o WHERE o.action_type = ${t}.action_type), ${t}.tokens_used)::bigint ELSE 0 END`;
};

/**
 * CTEs to add to a statement whose `src` CTE holds consumed queue rows (with queue_id and
 * usage_id): what they owe, per payer, consumer and kind, into tokenboard.pending_charges. A
 * usage row whose first queued row in the batch is a removal (sign −1) was seen by an earlier
 * batch: what it nets to is a correction; else it is charged for the first time. Rows that net
 * to 0 (an edit that changes no charge, an insert deleted in the same batch) stage nothing.
 */
/**
 * Queue rows at or below this id were charged when the seed's billing history was adopted
 * (app/models/billing-adoption.server.ts): they are rolled up but never charged again.
 */
const ADOPTED_THROUGH_QUEUE_ID = sql`COALESCE((SELECT (value->>'rollupQueueWatermark')::bigint FROM tokenboard.settings WHERE key = 'billing_adoption'), 0)`;

export function stageChargesSql(): RawBuilder<unknown> {
  return sql`
    charge_rows AS (
      SELECT s.queue_id, s.usage_id, s.user_id AS consumer_id, s.sign, s.created_at,
             CASE WHEN s.success AND s.action_type = ANY(${chargedTypes}) THEN COALESCE(o.token_value, s.tokens_used)::bigint ELSE 0 END AS charge
      FROM src s LEFT JOIN public.ai_action_token_overrides o ON o.action_type = s.action_type
      WHERE s.usage_id IS NOT NULL AND s.queue_id > ${ADOPTED_THROUGH_QUEUE_ID} AND (s.sign < 0 OR (s.success AND s.action_type = ANY(${chargedTypes})))
    ),
    -- Only a usage id with a removal (−1) in the batch can have more than one row in it (an insert
    -- queues one row per id); those are netted per id, the rest, nearly all, pass as they are.
    edited AS MATERIALIZED (SELECT DISTINCT usage_id FROM charge_rows WHERE sign < 0),
    per_usage AS (
      SELECT usage_id, consumer_id, sum(sign * charge) AS net,
             COALESCE(min(queue_id) FILTER (WHERE sign < 0) < min(queue_id) FILTER (WHERE sign > 0), min(queue_id) FILTER (WHERE sign > 0) IS NULL) AS seen_before,
             min(created_at) AS first_at, max(created_at) AS last_at, min(queue_id) AS first_queue_id, max(queue_id) AS last_queue_id
      FROM charge_rows c WHERE EXISTS (SELECT 1 FROM edited e WHERE e.usage_id = c.usage_id) GROUP BY usage_id, consumer_id
      UNION ALL
      SELECT usage_id, consumer_id, charge, false, created_at, created_at, queue_id, queue_id
      FROM charge_rows c WHERE NOT EXISTS (SELECT 1 FROM edited e WHERE e.usage_id = c.usage_id)
    ),
    owing AS MATERIALIZED (SELECT * FROM per_usage WHERE net <> 0),
    -- Materialized: the payer is looked up once per consumer, not once per row of the join below.
    payers AS MATERIALIZED (SELECT c.consumer_id, tokenboard.usage_payer(c.consumer_id) AS payer_id FROM (SELECT DISTINCT consumer_id FROM owing) c),
    staged AS (
      INSERT INTO tokenboard.pending_charges (payer_id, consumer_id, kind, amount, rows, usage_ids, first_at, last_at, first_queue_id, last_queue_id)
      SELECT p.payer_id, o.consumer_id, CASE WHEN o.seen_before THEN 'correction' ELSE 'usage' END, -sum(o.net), count(*), array_agg(o.usage_id),
             min(o.first_at), max(o.last_at), min(o.first_queue_id), max(o.last_queue_id)
      FROM owing o JOIN payers p USING (consumer_id)
      GROUP BY p.payer_id, o.consumer_id, o.seen_before
      ORDER BY p.payer_id, o.consumer_id, o.seen_before
      RETURNING 1
    )`;
}

/** Staged charges applied per call of tokenboard.apply_pending_charges: bounds one transaction's locks. */
export const APPLY_BATCH = 2_000;

export interface ChargeRun {
  entries: number;
  payers: number;
}

/**
 * Applies every staged charge to the ledger (migration 0026, tokenboard.apply_pending_charges):
 * per payer under the ledger lock, expiries first, then grants soonest-expiring first, then the
 * permanent part, below zero if need be. Runs concurrently with itself without applying a
 * staged row twice.
 */
export async function applyPendingCharges(db: Kysely<Database>, options: { limit?: number; maxMs?: number } = {}): Promise<ChargeRun> {
  const limit = options.limit ?? APPLY_BATCH;
  const started = Date.now();
  const run: ChargeRun = { entries: 0, payers: 0 };
  for (;;) {
    const result = await sql<{ entries: number; payers: number }>`SELECT * FROM tokenboard.apply_pending_charges(${limit}::int)`.execute(db);
    const { entries, payers } = result.rows[0] ?? { entries: 0, payers: 0 };
    run.entries += entries;
    run.payers += payers;
    if (entries < limit) return run;
    if (options.maxMs !== undefined && Date.now() - started > options.maxMs) return run;
  }
}

/**
 * The exact balance of `userId` as one scalar SQL expression: the stored balance, minus what of
 * its grants has lapsed but is not expired yet, plus what is staged for it (signed as entries),
 * minus the chargeable rows still queued for the consumers it pays for (itself, unless a pool
 * pays for it; its pool's members). Each part is what the next expiry, apply step and rollup
 * batch will write, read in one snapshot.
 */
export function exactBalanceSql(userId: string, options: { charge?: boolean } = {}): RawBuilder<number> {
  const id = sql`${userId}::uuid`;
  // Charging off: queued rows will stage nothing, so they owe nothing.
  const queued = (options.charge ?? chargingEnabled())
    ? sql`- COALESCE((SELECT sum(q.sign * ${rowCharge("q")}) FROM tokenboard.usage_rollup_queue q
                WHERE q.user_id IN (SELECT c.user_id FROM (${poolConsumersSql(id)}) c) AND q.usage_id IS NOT NULL AND q.id > ${ADOPTED_THROUGH_QUEUE_ID}), 0)`
    : sql``;
  return sql<number>`(
    COALESCE((SELECT b.balance FROM tokenboard.token_balances b WHERE b.user_id = ${id}), 0)
    - COALESCE((SELECT sum(l.remaining) FROM tokenboard.ledger_entries l WHERE l.user_id = ${id} AND l.remaining > 0 AND l.expires_at <= now()), 0)
    + COALESCE((SELECT sum(p.amount) FROM tokenboard.pending_charges p WHERE p.payer_id = ${id}), 0)
    ${queued}
  )::bigint`;
}

/** The consumers whose usage `payer` pays for: itself unless a pool pays for it, and its pool's members. */
function poolConsumersSql(payer: RawBuilder<unknown>): RawBuilder<{ user_id: string }> {
  return sql<{ user_id: string }>`
    SELECT ${payer} AS user_id WHERE tokenboard.usage_payer(${payer}) = ${payer}
    UNION
    SELECT m.user_id FROM public.households h JOIN public.household_members m ON m.household_id = h.id
    WHERE h.admin_user_id = ${payer} AND m.user_id <> ${payer} AND tokenboard.usage_payer(m.user_id) = ${payer}`;
}

/** Whose balance pays for `userId`'s usage: a pool's owner, or the user. */
export async function payerOf(db: Kysely<Database>, userId: string): Promise<string> {
  const result = await sql<{ payer: string }>`SELECT tokenboard.usage_payer(${userId}::uuid) AS payer`.execute(db);
  return result.rows[0]?.payer ?? userId;
}

export interface PoolMember {
  user_id: string;
  role: string | null;
  /** Tokens this member's usage cost the pool: charges and corrections applied, staged and queued. */
  spent: number;
}

export interface Pool {
  household_id: string;
  name: string;
  owner_id: string;
  members: PoolMember[];
}

/**
 * The shared pool `userId` spends from or owns, with each member's share of the spending; null
 * when the user spends their own balance and owns no pool.
 */
export async function poolOf(db: Kysely<Database>, userId: string): Promise<Pool | null> {
  const payer = await payerOf(db, userId);
  const household = await sql<{ id: string; name: string }>`
    SELECT h.id, h.name FROM public.households h WHERE h.admin_user_id = ${payer}::uuid AND h.shared_tokens_enabled IS TRUE
      AND EXISTS (SELECT 1 FROM public.household_members m WHERE m.household_id = h.id AND m.user_id <> h.admin_user_id AND tokenboard.usage_payer(m.user_id) = h.admin_user_id)
    ORDER BY h.created_at, h.id LIMIT 1`.execute(db);
  const h = household.rows[0];
  if (!h) return null;
  return { household_id: h.id, name: h.name, owner_id: payer, members: await poolSpending(db, payer) };
}

/**
 * Per consumer, what the usage of each consumer paid by `payer` cost it: ledger charges and
 * corrections (consumer_id names a pool member; null is the payer itself), staged charges and
 * the chargeable rows still queued. Biggest spender first.
 */
export async function poolSpending(db: Kysely<Database>, payer: string): Promise<PoolMember[]> {
  const id = sql`${payer}::uuid`;
  const result = await sql<PoolMember>`
    WITH consumers AS (${poolConsumersSql(id)}),
    spend AS (
      SELECT COALESCE(l.consumer_id, l.user_id) AS user_id, -l.amount AS tokens FROM tokenboard.ledger_entries l
      WHERE l.user_id = ${id} AND l.kind IN ('usage', 'correction')
      UNION ALL
      SELECT p.consumer_id, -p.amount FROM tokenboard.pending_charges p WHERE p.payer_id = ${id}
      UNION ALL
      SELECT q.user_id, q.sign * ${rowCharge("q")} FROM tokenboard.usage_rollup_queue q
      WHERE q.user_id IN (SELECT user_id FROM consumers) AND q.usage_id IS NOT NULL AND q.id > ${ADOPTED_THROUGH_QUEUE_ID}
    )
    SELECT c.user_id, (SELECT m.role FROM public.household_members m JOIN public.households h ON h.id = m.household_id
                       WHERE h.admin_user_id = ${id} AND m.user_id = c.user_id ORDER BY m.joined_at DESC NULLS LAST LIMIT 1) AS role,
           COALESCE((SELECT sum(s.tokens) FROM spend s WHERE s.user_id = c.user_id), 0)::bigint AS spent
    FROM (SELECT user_id FROM consumers UNION SELECT user_id FROM spend) c
    ORDER BY spent DESC, c.user_id`.execute(db);
  return result.rows;
}

export interface UsageCharge {
  entry_id: number;
  payer_id: string;
  kind: string;
  amount: number;
  reason: string | null;
  created_at: Date;
}

/**
 * The ledger entries that charged (and corrected) one usage row, oldest first; empty when it
 * was never charged (failed, not an AI type, not consumed yet, or before charging). Looked up
 * among its consumer's traces whose time span holds the row's created_at; a row that was
 * deleted or moved is looked for among all traces.
 */
export async function chargesOfUsage(db: Kysely<Database>, usageId: string): Promise<UsageCharge[]> {
  const id = sql`${usageId}::uuid`;
  const columns = sql`e.id AS entry_id, e.user_id AS payer_id, e.kind, e.amount, e.reason, e.created_at`;
  const near = await sql<UsageCharge>`
    SELECT ${columns} FROM public.token_usage u
    JOIN tokenboard.usage_charge_traces t ON t.consumer_id = u.user_id AND t.first_at <= u.created_at AND t.last_at >= u.created_at AND ${id} = ANY(t.usage_ids)
    JOIN tokenboard.ledger_entries e ON e.id = t.entry_id
    WHERE u.id = ${id} ORDER BY e.id`.execute(db);
  if (near.rows[0]?.kind === "usage") return near.rows;
  // Deleted, or its time edited since its charge: every trace, the slow way (support looks one row up).
  const anywhere = await sql<UsageCharge>`
    SELECT ${columns} FROM tokenboard.usage_charge_traces t JOIN tokenboard.ledger_entries e ON e.id = t.entry_id
    WHERE ${id} = ANY(t.usage_ids) ORDER BY e.id`.execute(db);
  return anywhere.rows;
}
