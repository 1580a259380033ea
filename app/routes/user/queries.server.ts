import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import type { DateRange } from "~/domain/period";

export interface AppUserInfo {
  user_id: string;
  email: string | null;
  display_name: string | null;
}

export async function appUser(db: Kysely<Database>, userId: string): Promise<AppUserInfo | null> {
  const row = await db.selectFrom("app_users").select(["user_id", "email", "display_name"]).where("user_id", "=", userId).executeTakeFirst();
  return row ?? null;
}

/** Whether usage, the ledger or the user table has ever seen this id (a user is any id the data names). */
export async function userIsKnown(db: Kysely<Database>, userId: string): Promise<boolean> {
  const result = await sql<{ known: boolean }>`
    SELECT EXISTS (SELECT 1 FROM app_users WHERE user_id = ${userId})
        OR EXISTS (SELECT 1 FROM token_balances WHERE user_id = ${userId})
        OR EXISTS (SELECT 1 FROM token_usage WHERE user_id = ${userId}) AS known`.execute(db);
  return result.rows[0]?.known ?? false;
}

export interface UserDailyType {
  day: string;
  action_type: string;
  tokens: number;
  calls: number;
}

/** One user's tokens and calls per local day and action type. */
export async function userUsagePerDay(db: Kysely<Database>, userId: string, range: DateRange): Promise<UserDailyType[]> {
  const result = await sql<UserDailyType>`
    SELECT to_char((created_at AT TIME ZONE ${range.tz})::date, 'YYYY-MM-DD') AS day, action_type,
           sum(tokens_used)::bigint AS tokens, count(*)::bigint AS calls
    FROM token_usage
    WHERE user_id = ${userId} AND created_at >= ${range.start} AND created_at < ${range.end}
    GROUP BY 1, 2
    ORDER BY 1, 2`.execute(db);
  return result.rows;
}

export interface UserTypeTotal {
  name: string;
  tokens: number;
  calls: number;
}

export async function userUsageByType(db: Kysely<Database>, userId: string, range: DateRange): Promise<UserTypeTotal[]> {
  const result = await sql<UserTypeTotal>`
    SELECT action_type AS name, sum(tokens_used)::bigint AS tokens, count(*)::bigint AS calls
    FROM token_usage
    WHERE user_id = ${userId} AND created_at >= ${range.start} AND created_at < ${range.end}
    GROUP BY 1
    ORDER BY 2 DESC, 1`.execute(db);
  return result.rows;
}

export interface UsageCursor {
  at: Date;
  id: string;
}

export function encodeCursor(c: UsageCursor): string {
  return `${c.at.toISOString()}_${c.id}`;
}

export function decodeCursor(value: string | null): UsageCursor | null | "invalid" {
  if (!value) return null;
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)_([0-9a-f-]{36})$/i.exec(value);
  if (!match) return "invalid";
  const at = new Date(match[1] as string);
  return Number.isNaN(at.getTime()) ? "invalid" : { at, id: match[2] as string };
}

export interface RecentCall {
  id: string;
  created_at: Date;
  action_type: string;
  model_used: string;
  route: string | null;
  tokens_used: number;
  success: boolean;
}

/** Newest calls first, keyset-paginated on (created_at, id) so deep pages stay fast. */
export async function recentUsage(db: Kysely<Database>, userId: string, cursor: UsageCursor | null, limit: number): Promise<{ rows: RecentCall[]; next: UsageCursor | null }> {
  let query = db
    .selectFrom("token_usage")
    .select(["id", "created_at", "action_type", "model_used", "route", "tokens_used", "success"])
    .where("user_id", "=", userId);
  if (cursor) query = query.where(sql<boolean>`(created_at, id) < (${cursor.at}, ${cursor.id}::uuid)`);
  const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { rows: page, next: rows.length > limit && last ? { at: last.created_at, id: last.id } : null };
}
