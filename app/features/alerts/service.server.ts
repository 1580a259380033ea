import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { getEnv } from "../../lib/env.server";
import { recordAudit, type Actor } from "../../models/audit.server";
import { channelKey, defaultChannels } from "./channels.server";
import { resendDelivery } from "./outbox.server";

export interface BalancePreview {
  days: number;
  lows: number;
  recoveries: number;
  users: number;
}

/**
 * What a balance threshold would have sent over the last `days` days: the ledger's balance_after
 * walked per user in id order, counting the crossings rules.ts would alert on.
 */
export async function previewBalanceThreshold(db: Kysely<Database>, threshold: number, userId?: string, days = 30): Promise<BalancePreview> {
  const result = await sql<{ lows: number; recoveries: number; users: number }>`
    WITH sides AS (
      SELECT user_id, balance_after < ${threshold} AS below,
             lag(balance_after < ${threshold}) OVER (PARTITION BY user_id ORDER BY id) AS was_below
      FROM ledger_entries
      WHERE created_at >= now() - make_interval(days => ${days})
        ${userId ? sql`AND user_id = ${userId}` : sql``})
    SELECT count(*) FILTER (WHERE below AND NOT coalesce(was_below, false))::int AS lows,
           count(*) FILTER (WHERE NOT below AND coalesce(was_below, false))::int AS recoveries,
           count(DISTINCT user_id) FILTER (WHERE below AND NOT coalesce(was_below, false))::int AS users
    FROM sides`.execute(db);
  const row = result.rows[0] ?? { lows: 0, recoveries: 0, users: 0 };
  return { days, ...row };
}

export async function listBalanceThresholds(db: Kysely<Database>) {
  return db.selectFrom("alert_balance_thresholds").select(["user_id", "threshold", "updated_at"]).orderBy("updated_at", "desc").limit(500).execute();
}

/** Sets (or replaces) one user's threshold, with its audit row in the same transaction. */
export async function saveBalanceThreshold(db: Kysely<Database>, actor: Actor, userId: string, threshold: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom("alert_balance_thresholds").select("threshold").where("user_id", "=", userId).executeTakeFirst();
    await trx
      .insertInto("alert_balance_thresholds")
      .values({ user_id: userId, threshold })
      .onConflict((oc) => oc.column("user_id").doUpdateSet({ threshold, updated_at: sql<Date>`now()` }))
      .execute();
    await recordAudit(trx, actor, { action: "alerts.threshold.set", targetType: "user", targetId: userId, before: before ?? null, after: { threshold } });
  });
}

export async function removeBalanceThreshold(db: Kysely<Database>, actor: Actor, userId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const removed = await trx.deleteFrom("alert_balance_thresholds").where("user_id", "=", userId).returning("threshold").executeTakeFirst();
    if (!removed) return false;
    await recordAudit(trx, actor, { action: "alerts.threshold.remove", targetType: "user", targetId: userId, before: removed, after: null });
    return true;
  });
}

/** Queues a failed or dead delivery again (same alert id), audited. */
export async function resendAlertDelivery(db: Kysely<Database>, actor: Actor, deliveryId: number): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom("alert_outbox").select(["id", "status", "attempts"]).where("delivery_id", "=", deliveryId).forUpdate().executeTakeFirst();
    if (!row || !(await resendDelivery(trx, deliveryId))) return false;
    await recordAudit(trx, actor, { action: "alerts.delivery.resend", targetType: "alert", targetId: row.id, before: { status: row.status, attempts: row.attempts }, after: { status: "pending" } });
    return true;
  });
}

/** The configured channels as the page shows them: kind and where, never a secret. */
export function describeChannels(): { key: string; kind: string; signed: boolean }[] {
  const env = getEnv();
  return defaultChannels().map((channel) => ({ key: channelKey(channel), kind: channel.kind, signed: channel.kind === "webhook" && Boolean(env.TOKENBOARD_ALERT_WEBHOOK_SECRET) }));
}
