/**
 * Adopting the seed app's billing history (SPEC, "Adopting the seed's billing tables"): once per
 * database, token_transactions becomes ledger entries (each naming its source row) and every
 * usage row already in token_usage is charged, replayed per balance in time order with the
 * grants and their expiries (app/domain/billing-replay.ts). Historical usage is charged per
 * (payer, consumer, UTC day), so the ledger stays bounded however many rows there are.
 *
 * Which usage rows adoption charged: every row in token_usage when it ran. It locks token_usage
 * against writes (SHARE) while it reads, so the set is exact, and records the rollup queue's
 * highest id at that moment as `rollupQueueWatermark`: a queue row at or below it is a usage row
 * adoption already charged; rows written later reach the queue (its triggers fire on new writes
 * only) above the watermark and are charged by the charging job.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "../../db/types";
import { ACTION_TYPES } from "../domain/action-types";
import { SEED_USAGE_COPY_KINDS, eventOfTransaction, replayBalance, type ReplayEntry, type ReplayEvent, type ReplayState } from "../domain/billing-replay";
import { recordAudit, type Actor } from "./audit.server";

export const ADOPTION_SETTING = "billing_adoption";
const ADOPTION_LOCK = "tokenboard:billing-adoption";
export const ADOPTION_ACTOR: Actor = { id: null, label: "adoption" };
const INSERT_BATCH = 2_000;

export interface AdoptionWatermark {
  adoptedAt: string;
  /** Highest usage_rollup_queue id when adoption read token_usage; queue rows up to it were charged by adoption. */
  rollupQueueWatermark: number;
  /** Usage rows charged by adoption, and the newest one's time. */
  usageRows: number;
  usageMaxCreatedAt: string | null;
}

export interface AdoptionResult extends AdoptionWatermark {
  balances: number;
  entries: number;
  transactions: number;
  legacyUsageCopies: number;
  usageDays: number;
  ms: number;
}

/** The record of a finished adoption, or null when it has not run on this database. */
export async function adoptionWatermark(db: Kysely<Database> | Transaction<Database>): Promise<AdoptionWatermark | null> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", ADOPTION_SETTING).executeTakeFirst();
  return row ? (row.value as unknown as AdoptionWatermark) : null;
}

const AI_TYPES = ACTION_TYPES.filter((t) => t.category === "ai").map((t) => t.name);

/**
 * Who pays for a user's usage: an active member sharing tokens of an active household with shared
 * tokens spends its admin's balance (from joined_at on); everyone else their own.
 */
export const POOL_MEMBERS_SQL = sql`
  SELECT DISTINCT ON (m.user_id) m.user_id, h.admin_user_id, h.id AS household_id, h.name AS household_name, m.joined_at
  FROM public.household_members m JOIN public.households h ON h.id = m.household_id
  WHERE m.status = 'active' AND COALESCE(m.allow_shared_tokens, true) AND COALESCE(h.shared_tokens_enabled, true)
    AND COALESCE(h.subscription_status, 'active') IN ('active', 'trialing') AND m.user_id <> h.admin_user_id
  ORDER BY m.user_id, m.joined_at NULLS FIRST, m.id`;

interface UsageDay {
  payer: string;
  consumer: string;
  day: string;
  calls: number;
  charge: number;
  last_at: Date;
}

async function readUsageDays(trx: Transaction<Database>): Promise<UsageDay[]> {
  const result = await sql<UsageDay>`
    WITH pool AS (${POOL_MEMBERS_SQL})
    SELECT CASE WHEN p.admin_user_id IS NOT NULL AND u.created_at >= COALESCE(p.joined_at, '-infinity') THEN p.admin_user_id ELSE u.user_id END AS payer,
           u.user_id AS consumer, to_char((u.created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day,
           count(*)::bigint AS calls, sum(COALESCE(o.token_value, u.tokens_used))::bigint AS charge, max(u.created_at) AS last_at
    FROM public.token_usage u
    LEFT JOIN public.ai_action_token_overrides o ON o.action_type = u.action_type
    LEFT JOIN pool p ON p.user_id = u.user_id
    WHERE u.success AND u.user_id IS NOT NULL AND u.action_type = ANY(${AI_TYPES}::text[])
      AND NOT EXISTS (SELECT 1 FROM tokenboard.ledger_entries l WHERE l.usage_id = u.id)
    GROUP BY 1, 2, 3`.execute(trx);
  return result.rows;
}

interface TransactionRow {
  id: string;
  user_id: string;
  action_type: string;
  tokens_used: number;
  created_at: Date;
  expires_at: Date | null;
  amount_paid_cents: number | null;
  currency: string | null;
  notes: string | null;
}

/** Ledger state of balances tokenboard already kept (an adoption after the ledger was in use). */
async function existingStates(trx: Transaction<Database>, users: string[]): Promise<Map<string, ReplayState>> {
  const states = new Map<string, ReplayState>();
  if (!users.length) return states;
  const balances = await trx.selectFrom("token_balances").select(["user_id", "balance"]).where("user_id", "=", sql<string>`ANY(${users}::uuid[])`).execute();
  for (const b of balances) states.set(b.user_id, { balance: Number(b.balance), grants: [] });
  const grants = await trx.selectFrom("ledger_entries").select(["id", "user_id", "remaining", "expires_at"])
    .where("user_id", "=", sql<string>`ANY(${users}::uuid[])`).where("remaining", ">", 0).where("expires_at", "is not", null).execute();
  for (const g of grants) {
    const state = states.get(g.user_id) ?? { balance: 0, grants: [] };
    state.grants.push({ id: Number(g.id), remaining: Number(g.remaining), expiresAt: new Date(g.expires_at as Date), entryIndex: null });
    states.set(g.user_id, state);
  }
  return states;
}

interface EntryRow extends ReplayEntry {
  id: number;
  userId: string;
  expiredEntryId: number | null;
}

async function insertEntries(trx: Transaction<Database>, rows: EntryRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_BATCH) {
    const batch = rows.slice(i, i + INSERT_BATCH).map((r) => ({
      id: r.id, user_id: r.userId, kind: r.kind, amount: r.amount, balance_after: r.balanceAfter, reason: r.reason,
      expires_at: r.expiresAt?.toISOString() ?? null, remaining: r.remaining, forced: r.forced, expired_entry_id: r.expiredEntryId,
      amount_paid_cents: r.amountPaidCents, currency: r.currency, source_ref: r.sourceRef, consumer_id: r.consumerId, created_at: r.createdAt.toISOString(),
    }));
    await sql`
      INSERT INTO tokenboard.ledger_entries (id, user_id, kind, amount, balance_after, reason, actor_id, actor_label, idempotency_key, expires_at, remaining,
        forced, usage_id, expired_entry_id, amount_paid_cents, currency, source_ref, consumer_id, created_at)
      SELECT r.id, r.user_id, r.kind, r.amount, r.balance_after, r.reason, NULL, ${ADOPTION_ACTOR.label}, NULL, r.expires_at, r.remaining,
        r.forced, NULL, r.expired_entry_id, r.amount_paid_cents, r.currency, r.source_ref, r.consumer_id, r.created_at
      FROM jsonb_to_recordset(${JSON.stringify(batch)}::jsonb) AS r(id bigint, user_id uuid, kind text, amount bigint, balance_after bigint, reason text,
        expires_at timestamptz, remaining bigint, forced boolean, expired_entry_id bigint, amount_paid_cents integer, currency text, source_ref text,
        consumer_id uuid, created_at timestamptz)
      ORDER BY r.id`.execute(trx);
  }
}

async function allocateIds(trx: Transaction<Database>, n: number): Promise<number[]> {
  if (n === 0) return [];
  const result = await sql<{ id: string }>`SELECT nextval(pg_get_serial_sequence('tokenboard.ledger_entries', 'id'))::text AS id FROM generate_series(1, ${n})`.execute(trx);
  return result.rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/**
 * Adopts the seed's billing history once; answers null when this database already did. One
 * transaction: the entries, the balances, the record of the adoption and its audit row, so a
 * failure leaves nothing behind and the next start tries again.
 */
export async function adoptBillingOnce(db: Kysely<Database>, options: { now?: Date } = {}): Promise<AdoptionResult | null> {
  const started = Date.now();
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(hashtextextended(${ADOPTION_LOCK}, 0))`.execute(trx);
    if (await adoptionWatermark(trx)) return null;
    // No usage row may be written between reading token_usage and the watermark (see the header).
    await sql`LOCK TABLE public.token_usage, public.token_transactions IN SHARE MODE`.execute(trx);
    const now = options.now ?? new Date();
    const watermark = await sql<{ queue: string }>`SELECT COALESCE(max(id), 0)::text AS queue FROM tokenboard.usage_rollup_queue`.execute(trx);
    // What a rollup staged before now came from rows this adoption charges (as they are now,
    // edits included): charged here, so dropped there.
    await sql`DELETE FROM tokenboard.pending_charges`.execute(trx);

    const transactions = await sql<TransactionRow>`
      SELECT t.id, t.user_id, t.action_type::text AS action_type, t.tokens_used, COALESCE(t.created_at, now()) AS created_at, t.expires_at,
             t.amount_paid_cents, t.currency, t.notes
      FROM public.token_transactions t
      WHERE NOT (t.action_type::text = ANY(${[...SEED_USAGE_COPY_KINDS]}::text[]))
        AND NOT EXISTS (SELECT 1 FROM tokenboard.ledger_entries l WHERE l.source_ref = 'token_transactions:' || t.id)
      ORDER BY t.user_id, t.created_at, t.id`.execute(trx);
    const copies = await sql<{ n: string }>`SELECT count(*)::text AS n FROM public.token_transactions WHERE action_type::text = ANY(${[...SEED_USAGE_COPY_KINDS]}::text[])`.execute(trx);
    const usageDays = await readUsageDays(trx);

    const events = new Map<string, ReplayEvent[]>();
    const add = (userId: string, event: ReplayEvent) => {
      const list = events.get(userId);
      if (list) list.push(event);
      else events.set(userId, [event]);
    };
    for (const row of transactions.rows) {
      const event = eventOfTransaction({
        id: row.id, actionType: row.action_type, tokensUsed: Number(row.tokens_used), createdAt: new Date(row.created_at), expiresAt: row.expires_at ? new Date(row.expires_at) : null,
        amountPaidCents: row.amount_paid_cents, currency: row.currency, notes: row.notes,
      });
      if (event) add(row.user_id, event);
    }
    let usageRows = 0;
    let usageMax: Date | null = null;
    for (const day of usageDays) {
      const calls = Number(day.calls);
      const lastAt = new Date(day.last_at);
      usageRows += calls;
      if (!usageMax || lastAt > usageMax) usageMax = lastAt;
      const charge = Number(day.charge);
      if (charge <= 0) continue;
      const consumer = day.consumer === day.payer ? "" : ` by ${day.consumer}`;
      add(day.payer, {
        type: "charge", at: lastAt, amount: charge, consumerId: day.consumer,
        sourceRef: `token_usage:${day.day}:${day.consumer}`,
        reason: `usage of ${day.day}: ${calls.toLocaleString("en-US")} call${calls === 1 ? "" : "s"}${consumer}`,
      });
    }

    const users = [...events.keys()].sort();
    const states = await existingStates(trx, users);
    const replays = users.map((userId) => ({ userId, result: replayBalance(events.get(userId)!, now, states.get(userId)) }));
    const ids = await allocateIds(trx, replays.reduce((n, r) => n + r.result.entries.length, 0));
    const rows: EntryRow[] = [];
    for (const { userId, result } of replays) {
      const base = rows.length;
      result.entries.forEach((entry, i) => {
        const expiredEntryId = entry.expires === null ? null : "ledgerId" in entry.expires ? entry.expires.ledgerId : ids[base + entry.expires.entryIndex]!;
        rows.push({ ...entry, id: ids[base + i]!, userId, expiredEntryId });
      });
    }
    await insertEntries(trx, rows);
    for (const { result } of replays) {
      for (const [id, remaining] of result.existingRemaining) await trx.updateTable("ledger_entries").set({ remaining }).where("id", "=", id).execute();
    }
    const balances = replays.map((r) => ({ user_id: r.userId, balance: r.result.balance }));
    for (let i = 0; i < balances.length; i += INSERT_BATCH) {
      await trx.insertInto("token_balances").values(balances.slice(i, i + INSERT_BATCH))
        .onConflict((oc) => oc.column("user_id").doUpdateSet({ balance: (eb) => eb.ref("excluded.balance"), updated_at: sql`now()` })).execute();
    }

    const record: AdoptionWatermark = {
      adoptedAt: now.toISOString(), rollupQueueWatermark: Number(watermark.rows[0]?.queue ?? 0), usageRows, usageMaxCreatedAt: usageMax?.toISOString() ?? null,
    };
    const result: AdoptionResult = {
      ...record, balances: balances.length, entries: rows.length, transactions: transactions.rows.length,
      legacyUsageCopies: Number(copies.rows[0]?.n ?? 0), usageDays: usageDays.length, ms: Date.now() - started,
    };
    await trx.insertInto("settings").values({ key: ADOPTION_SETTING, value: JSON.stringify(record) }).execute();
    await recordAudit(trx, ADOPTION_ACTOR, {
      action: "billing.adopt", targetType: "ledger", after: { ...result, ms: undefined },
      reason: "seed billing history adopted: token_transactions and usage charged per day",
    });
    return result;
  });
}

/** One line for start-up logs and the CLI. */
export function describeAdoption(result: AdoptionResult): string {
  const n = (v: number) => v.toLocaleString("en-US");
  return `billing adopted: ${n(result.transactions)} token_transactions rows (${n(result.legacyUsageCopies)} legacy usage copies counted, not charged), ${n(result.usageRows)} usage rows charged as ${n(result.usageDays)} daily charges; ${n(result.entries)} ledger entries for ${n(result.balances)} balances in ${n(result.ms)} ms`;
}
