/**
 * The token ledger. Every balance change is one transaction that takes the user's lock,
 * writes one ledger entry with the balance after it, updates the balance and appends the
 * audit row. The common adjustment is that whole transaction in one round trip (the database
 * function tokenboard.ledger_write_entry), and concurrent ones share their round trip and
 * commit (app/models/ledger-batch.server.ts); the rest takes the general path below. Rules
 * (consumption order, limits) live in app/domain/ledger.ts.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import type { Database, LedgerEntry, LedgerKind } from "../../db/types";
import { initialRemaining, insufficientMessage, planDebit, type OpenGrant } from "../domain/ledger";
import { SYSTEM_ACTOR, type Actor } from "./audit.server";
import { exactBalanceSql } from "./charging.server";
import { ledgerBatcher, ledgerWriteEntry } from "./ledger-batch.server";
import { logger } from "../lib/logger.server";
import { checkSupportCap, type SupportCap, type SupportCapRefusal } from "./support-cap.server";

type Db = Kysely<Database> | Transaction<Database>;

export interface AdjustmentInput {
  userId: string;
  kind: "grant" | "deduct" | "purchase";
  /** Positive; the kind gives the sign. */
  amount: number;
  reason: string | null;
  idempotencyKey: string;
  /** Only for grants: when what is left of this grant expires. */
  expiresAt?: Date | null;
  /** Admin only (checked by the caller): allow the balance below zero. */
  force?: boolean;
  /** Support's rolling cap per user, checked under the user's lock. */
  supportCap?: SupportCap;
}

export type AdjustmentOutcome =
  | { status: "applied" | "replay"; entry: LedgerEntry; balance: number }
  | { status: "insufficient"; balance: number; message: string }
  | { status: "key_conflict"; message: string }
  | SupportCapRefusal;

const UNIQUE_VIOLATION = "23505";

function isUniqueViolation(error: unknown, constraint: string): boolean {
  const e = error as { code?: string; constraint?: string };
  return e?.code === UNIQUE_VIOLATION && e.constraint === constraint;
}

/**
 * Serializes every write of one user. A transaction-scoped advisory lock on the user id
 * queues waiters fairly (FIFO); waiting on the balance row itself makes every waiter wake
 * and retry on each commit, which collapses throughput for a hot user.
 */
async function lockUser(trx: Transaction<Database>, userId: string): Promise<void> {
  // The canonical text of the uuid, as in tokenboard.ledger_write_entry: one lock per user, whatever the case of the id sent.
  await sql`SELECT pg_advisory_xact_lock(hashtextextended('ledger:' || ${userId}::uuid::text, 0))`.execute(trx);
}

type LiveGrant = OpenGrant & { due: boolean };

interface LockedState {
  balance: number;
  existingId: number | null;
  grants: LiveGrant[];
}

/**
 * Under the lock, in one round trip: the balance (the row is created at 0 on a user's first
 * entry), whether the key was used already, and the user's grants with tokens left. This
 * statement starts after the lock was granted, so it sees every earlier writer's commit.
 */
async function lockedState(trx: Transaction<Database>, userId: string, key: string | null): Promise<LockedState> {
  const result = await sql<{ balance: number; existing_id: number | null; grants: { id: number; remaining: number; expires_at: string; due: boolean }[] }>`
    WITH created AS (
      INSERT INTO token_balances (user_id, balance) VALUES (${userId}, 0) ON CONFLICT (user_id) DO NOTHING RETURNING balance
    )
    SELECT COALESCE((SELECT balance FROM created), (SELECT balance FROM token_balances WHERE user_id = ${userId})) AS balance,
           (SELECT id FROM ledger_entries WHERE idempotency_key = ${key}) AS existing_id,
           COALESCE((SELECT jsonb_agg(jsonb_build_object('id', id, 'remaining', remaining, 'expires_at', expires_at, 'due', expires_at <= now()) ORDER BY expires_at, id)
                     FROM ledger_entries WHERE user_id = ${userId} AND remaining > 0), '[]'::jsonb) AS grants`.execute(trx);
  const row = result.rows[0];
  if (!row) throw new Error("balance row missing");
  return {
    balance: row.balance,
    existingId: row.existing_id,
    grants: row.grants.map((g) => ({ id: g.id, remaining: g.remaining, expiresAt: new Date(g.expires_at), due: g.due })),
  };
}

/** Under the user's lock: the state, with lapsed grants already expired. */
async function stateWithExpiries(trx: Transaction<Database>, userId: string, key: string | null): Promise<LockedState> {
  const state = await lockedState(trx, userId, key);
  if (state.existingId !== null) return state;
  const balance = await expireLapsed(trx, userId, state.balance, state.grants);
  return { ...state, balance, grants: state.grants.filter((g) => !g.due) };
}

interface NewEntry {
  userId: string;
  kind: LedgerKind;
  /** Signed. The balance after and `forced` (after < 0) follow from the balance before. */
  amount: number;
  reason: string | null;
  /** Null for the system's own entries: callers' keys never share a namespace with them. */
  idempotencyKey: string | null;
  expiresAt?: Date | null;
  remaining?: number | null;
  usageId?: string | null;
  expiredEntryId?: number | null;
}

/**
 * Writes an entry whose checks were made by the caller, under the user's lock: the entry, the
 * new balance and the audit row (the one recordAudit writes, inlined) in one call of
 * tokenboard.ledger_write_entry, told the balance before.
 */
async function writeEntry(trx: Transaction<Database>, actor: Actor, balanceBefore: number, e: NewEntry): Promise<LedgerEntry> {
  const result = await ledgerWriteEntry({ ...e, actor, allowNegative: true, balanceBefore }).execute(trx);
  const entry = result.rows[0];
  if (!entry) throw new Error("ledger entry was not written");
  return entry;
}

/** Expires what is left of the user's lapsed grants; returns the balance after. */
async function expireLapsed(trx: Transaction<Database>, userId: string, balance: number, grants: LiveGrant[]): Promise<number> {
  let current = balance;
  for (const grant of grants.filter((g) => g.due)) {
    const after = current - grant.remaining;
    await trx.updateTable("ledger_entries").set({ remaining: 0 }).where("id", "=", grant.id).execute();
    await writeEntry(trx, SYSTEM_ACTOR, current, {
      userId,
      kind: "expiry",
      amount: -grant.remaining,
      reason: `grant #${grant.id} expired`,
      idempotencyKey: null,
      expiredEntryId: grant.id,
    });
    current = after;
  }
  return current;
}

async function consume(trx: Transaction<Database>, grants: OpenGrant[], amount: number): Promise<void> {
  for (const { id, take } of planDebit(grants, amount)) {
    await trx.updateTable("ledger_entries").set({ remaining: sql`remaining - ${take}` }).where("id", "=", id).execute();
  }
}

async function findByKey(db: Db, key: string): Promise<LedgerEntry | undefined> {
  return db.selectFrom("ledger_entries").selectAll().where("idempotency_key", "=", key).executeTakeFirst();
}

function replayOf(entry: LedgerEntry, input: AdjustmentInput): AdjustmentOutcome {
  const sign = input.kind === "deduct" ? -1 : 1;
  if (entry.user_id !== input.userId || entry.kind !== input.kind || entry.amount !== sign * input.amount) {
    return { status: "key_conflict", message: "idempotency_key was already used for a different adjustment; send a new key for a new adjustment" };
  }
  return { status: "replay", entry, balance: entry.balance_after };
}

/**
 * Grants or deducts tokens. A repeated idempotency key answers the first result and changes
 * nothing, also when two requests with the same key race (the loser of the unique index
 * reads the winner's entry).
 */
export async function adjustBalance(db: Kysely<Database>, actor: Actor, input: AdjustmentInput): Promise<AdjustmentOutcome> {
  try {
    const signed = input.kind === "deduct" ? -input.amount : input.amount;
    const expiresAt = input.kind === "grant" ? (input.expiresAt ?? null) : null;
    // A capped adjustment takes the general path: its check must run under the user's lock.
    if (!expiresAt && !input.supportCap) {
      // The common case, batched with concurrent ones: the user's lock, then the entry only for
      // a new key, a user without open expiring grants and an allowed result; else no entry,
      // nothing written, and the general path below decides.
      const entry = await ledgerBatcher(db).write({
        actor, userId: input.userId, kind: input.kind, amount: signed, reason: input.reason, idempotencyKey: input.idempotencyKey, allowNegative: input.force === true,
      });
      if (entry) return { status: "applied", entry, balance: entry.balance_after };
    }
    return await db.transaction().execute(async (trx) => {
      await lockUser(trx, input.userId);
      const { balance, existingId, grants: live } = await stateWithExpiries(trx, input.userId, input.idempotencyKey);
      if (existingId !== null) {
        const existing = await findByKey(trx, input.idempotencyKey);
        if (existing) return replayOf(existing, input);
      }
      const refusal = input.supportCap ? await checkSupportCap(trx, input.supportCap, input.userId, input.amount) : null;
      if (refusal) return refusal;
      if (input.kind === "deduct") {
        const after = balance - input.amount;
        // Expiries written above stay: they are due whatever this request does.
        if (after < 0 && !input.force) return { status: "insufficient", balance, message: insufficientMessage(balance, input.amount) };
        await consume(trx, live, input.amount);
        const entry = await writeEntry(trx, actor, balance, {
          userId: input.userId, kind: "deduct", amount: -input.amount, reason: input.reason, idempotencyKey: input.idempotencyKey,
        });
        return { status: "applied", entry, balance: after };
      }
      const after = balance + input.amount;
      const entry = await writeEntry(trx, actor, balance, {
        userId: input.userId, kind: input.kind, amount: input.amount, reason: input.reason, idempotencyKey: input.idempotencyKey,
        expiresAt, remaining: expiresAt ? initialRemaining(balance, live, input.amount) : null,
      });
      return { status: "applied", entry, balance: after };
    });
  } catch (error) {
    if (isUniqueViolation(error, "ledger_entries_idempotency_key_key")) {
      const first = await findByKey(db, input.idempotencyKey);
      if (first) return replayOf(first, input);
    }
    throw error;
  }
}

/**
 * The balance exact at read time (exactBalanceSql): the stored balance with what has lapsed,
 * what is staged and what is still queued for this payer counted, as the next expiry, apply
 * step and rollup batch will write them.
 */
export async function getBalance(db: Db, userId: string, options: { charge?: boolean } = {}): Promise<number> {
  const result = await sql<{ balance: number }>`SELECT ${exactBalanceSql(userId, options)} AS balance`.execute(db);
  return Number(result.rows[0]?.balance ?? 0);
}

/** The balance as written by the last ledger entry (what an apply step starts from). */
export async function getStoredBalance(db: Db, userId: string): Promise<number> {
  const row = await db.selectFrom("token_balances").select("balance").where("user_id", "=", userId).executeTakeFirst();
  return row?.balance ?? 0;
}

export interface LedgerPage {
  entries: LedgerEntry[];
  total: number;
}

/** One user's ledger, newest first, offset-paginated (one user's ledger is small enough). */
export async function listLedger(db: Db, userId: string, page: number, pageSize: number): Promise<LedgerPage> {
  const [entries, count] = await Promise.all([
    db.selectFrom("ledger_entries").selectAll().where("user_id", "=", userId).orderBy("id", "desc").limit(pageSize).offset((page - 1) * pageSize).execute(),
    db.selectFrom("ledger_entries").select((eb) => eb.fn.countAll<number>().as("n")).where("user_id", "=", userId).executeTakeFirstOrThrow(),
  ]);
  return { entries, total: count.n };
}

export interface ExpiryRun {
  expired: number;
  failed: number;
}

/**
 * Expires lapsed grants of every user, one transaction per user. One user's failure is logged
 * and counted and does not stop the others.
 */
export async function expireDueGrants(db: Kysely<Database>, limit = 500): Promise<ExpiryRun> {
  const users = await db
    .selectFrom("ledger_entries")
    .select("user_id")
    .distinct()
    .where("remaining", ">", 0)
    .where("expires_at", "<=", sql<Date>`now()`)
    .limit(limit)
    .execute();
  const run: ExpiryRun = { expired: 0, failed: 0 };
  for (const { user_id } of users) {
    try {
      await db.transaction().execute(async (trx) => {
        await lockUser(trx, user_id);
        await stateWithExpiries(trx, user_id, null);
      });
      run.expired += 1;
    } catch (error) {
      run.failed += 1;
      logger.error({ err: error, userId: user_id }, "expiring a user's grants failed");
    }
  }
  return run;
}
