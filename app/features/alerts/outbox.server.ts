import { randomUUID } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { AlertDeliveryStatus, Database } from "../../../db/types";
import { logger } from "../../lib/logger.server";
import { metrics } from "../../lib/metrics.server";
import { channelKey, channelSchema, defaultChannels, sendToChannel, type Attachment, type Channel } from "./channels.server";
import { retryDelayMs, RETRY_WINDOW_MS, type AlertMessage, type AlertType } from "./rules";

export interface NewAlert {
  type: AlertType;
  userId?: string;
  title: string;
  text: string;
  path?: string;
  details?: Record<string, unknown>;
  /** Names the event so that it is queued once however often it is seen (e.g. a spend period). */
  dedupeKey?: string;
  channels?: Channel[];
}

/**
 * Queues an alert for each channel, inside the caller's transaction, so the alert exists exactly
 * when what caused it does. Returns the alert id, or undefined when there is no channel or the
 * event was already queued.
 */
export async function enqueueAlert(db: Kysely<Database>, alert: NewAlert): Promise<string | undefined> {
  const channels = alert.channels ?? defaultChannels();
  if (channels.length === 0) return undefined;
  const id = randomUUID();
  const payload = JSON.stringify({ title: alert.title, text: alert.text, path: alert.path, details: alert.details ?? {} });
  const rows = await db
    .insertInto("alert_outbox")
    .values(
      channels.map((channel) => ({
        id,
        channel_key: channelKey(channel),
        type: alert.type,
        user_id: alert.userId ?? null,
        payload,
        channel: JSON.stringify(channel),
        dedupe_key: alert.dedupeKey ?? null,
        dead_after: sql<Date>`now() + ${`${RETRY_WINDOW_MS} milliseconds`}::interval`,
      })),
    )
    .onConflict((oc) => oc.columns(["dedupe_key", "channel_key"]).doNothing())
    .returning("delivery_id")
    .execute();
  return rows.length ? id : undefined;
}

/** A claimed row is not offered again for this long, so a sender that died mid-send is retried. */
const LEASE_SECONDS = 120;

interface ClaimedDelivery {
  delivery_id: number;
  id: string;
  type: AlertType;
  created_at: Date;
  user_id: string | null;
  payload: { title: string; text: string; path?: string; details: Record<string, unknown> };
  channel: unknown;
  attempts: number;
  dead_after: Date;
}

export interface DeliveryRun {
  sent: number;
  failed: number;
  dead: number;
}

/**
 * Sends what is due. Rows are claimed (FOR UPDATE SKIP LOCKED, then leased) in a short
 * transaction and sent outside it, all at once with a timeout each, so one slow receiver costs
 * at most `timeoutMs` and never holds a lock or a pooled connection while it is waited for.
 */
export async function deliverDueAlerts(db: Kysely<Database>, options: { limit?: number; timeoutMs?: number } = {}): Promise<DeliveryRun & { backlog: boolean }> {
  const limit = options.limit ?? 50;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const claimed = await sql<ClaimedDelivery>`
    UPDATE alert_outbox o SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => ${LEASE_SECONDS})
    WHERE o.delivery_id IN (
      SELECT delivery_id FROM alert_outbox
      WHERE status IN ('pending', 'failed') AND next_attempt_at <= now()
      ORDER BY next_attempt_at
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED)
    RETURNING o.delivery_id, o.id, o.type, o.created_at, o.user_id, o.payload, o.channel, o.attempts, o.dead_after`.execute(db);
  const run: DeliveryRun = { sent: 0, failed: 0, dead: 0 };
  await Promise.all(
    claimed.rows.map(async (row) => {
      const outcome = await deliverOne(db, row, timeoutMs);
      run[outcome] += 1;
    }),
  );
  return { ...run, backlog: claimed.rows.length === limit };
}

async function deliverOne(db: Kysely<Database>, row: ClaimedDelivery, timeoutMs: number): Promise<"sent" | "failed" | "dead"> {
  const channel = channelSchema.safeParse(row.channel);
  const message: AlertMessage = {
    id: row.id,
    type: row.type,
    created_at: row.created_at.toISOString(),
    ...(row.user_id ? { user_id: row.user_id } : {}),
    title: row.payload.title,
    text: row.payload.text,
    path: row.payload.path,
    details: row.payload.details,
  };
  const attachments = channel.success && channel.data.kind === "email" ? await reportAttachments(db, row) : [];
  const result = channel.success ? await sendToChannel(channel.data, message, timeoutMs, attachments) : { ok: false, error: "unreadable channel" };
  const kind = channel.success ? channel.data.kind : "unknown";
  if (result.ok) {
    metrics().alertDeliveries.inc({ channel: kind, outcome: "sent" });
    metrics().alertLatencySeconds.observe({ channel: kind }, (Date.now() - row.created_at.getTime()) / 1000);
    await db
      .updateTable("alert_outbox")
      .set({ status: "sent", sent_at: sql<Date>`now()`, last_status_code: result.statusCode ?? null, last_error: null })
      .where("delivery_id", "=", row.delivery_id)
      .execute();
    return "sent";
  }
  // Retries continue until a failure comes after dead_after, so they span the whole window.
  const nextAt = new Date(Date.now() + retryDelayMs(row.attempts));
  const status: AlertDeliveryStatus = Date.now() >= row.dead_after.getTime() ? "dead" : "failed";
  metrics().alertDeliveries.inc({ channel: kind, outcome: status });
  await db
    .updateTable("alert_outbox")
    .set({ status, next_attempt_at: nextAt, last_status_code: result.statusCode ?? null, last_error: result.error ?? "failed" })
    .where("delivery_id", "=", row.delivery_id)
    .execute();
  logger.warn({ alertId: row.id, type: row.type, attempts: row.attempts, status, error: result.error }, "alert delivery failed");
  return status;
}

/** A delivered monthly report travels as its CSV by email. */
async function reportAttachments(db: Kysely<Database>, row: ClaimedDelivery): Promise<Attachment[]> {
  const reportId = row.type === "report.delivered" ? row.payload.details.report_id : undefined;
  if (typeof reportId !== "string") return [];
  const report = await db.selectFrom("report_deliveries").select(["month", "zone", "csv"]).where("id", "=", reportId).executeTakeFirst();
  if (!report) return [];
  return [{ filename: `tokenboard-${report.month}-${report.zone.replace(/\//g, "_")}.csv`, content: report.csv, contentType: "text/csv" }];
}

/** Queues a failed or dead delivery again now, with a fresh retry window; the alert id stays. */
export async function resendDelivery(db: Kysely<Database>, deliveryId: number): Promise<boolean> {
  const result = await db
    .updateTable("alert_outbox")
    .set({ status: "pending", next_attempt_at: sql<Date>`now()`, dead_after: sql<Date>`now() + ${`${RETRY_WINDOW_MS} milliseconds`}::interval` })
    .where("delivery_id", "=", deliveryId)
    .where("status", "in", ["failed", "dead"])
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function listDeliveries(db: Kysely<Database>, limit = 100) {
  return db
    .selectFrom("alert_outbox")
    .select(["delivery_id", "id", "type", "created_at", "user_id", "channel_key", "status", "attempts", "next_attempt_at", "last_error", "last_status_code", "sent_at"])
    .orderBy("created_at", "desc")
    .orderBy("delivery_id", "desc")
    .limit(limit)
    .execute();
}
