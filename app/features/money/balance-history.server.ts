/**
 * What the support view needs to explain one balance: its running balance per local day, the
 * grants about to expire, and since when it is overdrawn.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import type { DateRange } from "~/domain/period";
import { ledgerDays, overdrawnUsers } from "./billing.server";
import { runningBalance, type BalanceDay } from "./rules";

export interface UpcomingExpiry {
  id: number;
  kind: string;
  amount: number;
  remaining: number;
  expires_at: Date;
  created_at: Date;
}

export interface BalanceHistory {
  /** The balance at the start of the range (Σ of the entries before it). */
  opening: number;
  days: BalanceDay[];
  upcoming: UpcomingExpiry[];
  /** Set while the balance is below zero. */
  overdraft: { balance: number; since: Date | null } | null;
}

export const UPCOMING_SHOWN = 20;

export async function upcomingExpiries(db: Kysely<Database>, userId: string, now: Date = new Date(), limit = UPCOMING_SHOWN): Promise<UpcomingExpiry[]> {
  const result = await sql<UpcomingExpiry>`
    SELECT id, kind, amount, remaining, expires_at, created_at
    FROM ledger_entries
    WHERE user_id = ${userId} AND remaining > 0 AND expires_at > ${now}
    ORDER BY expires_at, id
    LIMIT ${limit}`.execute(db);
  return result.rows;
}

export async function balanceHistory(db: Kysely<Database>, userId: string, range: DateRange, now: Date = new Date()): Promise<BalanceHistory> {
  const [opening, days, upcoming, overdrawn] = await Promise.all([
    sql<{ total: number }>`SELECT COALESCE(sum(amount), 0)::bigint AS total FROM ledger_entries WHERE user_id = ${userId} AND created_at < ${range.start}`.execute(db),
    ledgerDays(db, range, userId),
    upcomingExpiries(db, userId, now),
    overdrawnUsers(db, 1, userId),
  ]);
  const start = opening.rows[0]?.total ?? 0;
  const current = overdrawn.users[0];
  return {
    opening: start,
    days: runningBalance(start, days, range.from, range.to),
    upcoming,
    overdraft: current ? { balance: current.balance, since: current.since } : null,
  };
}
