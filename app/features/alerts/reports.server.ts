import { createHash } from "node:crypto";
import type { Kysely } from "kysely";
import type pg from "pg";
import type { Database } from "../../../db/types";
import { currentMonth, monthPeriod, previousMonth } from "../../domain/period";
import { recordAudit, type Actor } from "../../models/audit.server";
import { openCsvExport } from "../../models/reports.server";
import { channelsFor } from "./channels.server";
import { enqueueAlert } from "./outbox.server";
import type { RuleChannel } from "./rules";

export function reportPath(reportId: string): string {
  return `/alerts/reports/${reportId}`;
}

async function monthlyCsv(pool: pg.Pool, month: string, zone: string, now: Date): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await openCsvExport(pool, "monthly", monthPeriod(month, zone, now))) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/**
 * Sends each subscription the month that last closed in its zone, once: the CSV is kept as
 * delivered (bytes and sha256) and the report.delivered alert is queued in the same transaction.
 * Months that closed before the subscription existed are not sent.
 */
export async function deliverMonthlyReports(db: Kysely<Database>, pool: pg.Pool, now: Date = new Date()): Promise<{ delivered: number }> {
  const subscriptions = await db.selectFrom("report_subscriptions").selectAll().execute();
  let delivered = 0;
  for (const sub of subscriptions) {
    const month = previousMonth(currentMonth(sub.zone, now));
    const period = monthPeriod(month, sub.zone, now);
    if (period.end <= sub.created_at) continue;
    const done = await db.selectFrom("report_deliveries").select("id").where("subscription_id", "=", sub.id).where("month", "=", month).executeTakeFirst();
    if (done) continue;
    const csv = await monthlyCsv(pool, month, sub.zone, now);
    const sha256 = createHash("sha256").update(csv).digest("hex");
    const queued = await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto("report_deliveries")
        .values({ subscription_id: sub.id, month, zone: sub.zone, csv, bytes: csv.length, sha256 })
        .onConflict((oc) => oc.columns(["subscription_id", "month"]).doNothing())
        .returning("id")
        .executeTakeFirst();
      if (!row) return false;
      const rows = Math.max(0, csv.toString("utf8").trimEnd().split("\n").length - 1);
      await enqueueAlert(trx, {
        type: "report.delivered",
        title: `Monthly report ${month} (${sub.zone})`,
        text: `The usage report for ${month} in ${sub.zone} is ready: ${rows} rows, ${csv.length} bytes, sha256 ${sha256}.`,
        path: reportPath(row.id),
        details: { report_id: row.id, subscription: sub.name, month, zone: sub.zone, rows, bytes: csv.length, sha256 },
        dedupeKey: `report:${sub.id}:${month}`,
        channels: channelsFor(sub.channel),
      });
      return true;
    });
    if (queued) delivered += 1;
  }
  return { delivered };
}

export async function readDeliveredReport(db: Kysely<Database>, reportId: string) {
  return db.selectFrom("report_deliveries").select(["month", "zone", "csv", "sha256"]).where("id", "=", reportId).executeTakeFirst();
}

export async function subscribeMonthlyReport(db: Kysely<Database>, actor: Actor, input: { name: string; zone: string; channel: RuleChannel }): Promise<string> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.insertInto("report_subscriptions").values({ ...input, created_by: actor.id }).returning("id").executeTakeFirstOrThrow();
    await recordAudit(trx, actor, { action: "alerts.report.subscribe", targetType: "report_subscription", targetId: row.id, after: input });
    return row.id;
  });
}

export async function listReportSubscriptions(db: Kysely<Database>) {
  return db.selectFrom("report_subscriptions").select(["id", "name", "zone", "channel", "created_at"]).orderBy("created_at", "desc").execute();
}
