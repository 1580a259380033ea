import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { logger } from "../../lib/logger.server";
import { checkActionTypeDrift } from "../../models/action-type-sync.server";
import { channelsFor } from "./channels.server";
import { enqueueAlert } from "./outbox.server";
import { driftStateKey, silenceRuleSchema } from "./rules";

async function readState<T>(db: Kysely<Database>, key: string): Promise<T | undefined> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", key).executeTakeFirst();
  return row?.value as T | undefined;
}

async function writeState(db: Kysely<Database>, key: string, state: unknown): Promise<void> {
  const value = JSON.stringify(state);
  await db
    .insertInto("settings")
    .values({ key, value })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: new Date() }))
    .execute();
}

/**
 * New outlier flags since the last run, one alert per rule and action type: a burst of flags is
 * one message with its count and a link to the filtered outliers page. Watermark and alerts
 * commit together.
 */
export async function evaluateOutlierAlerts(db: Kysely<Database>): Promise<{ flags: number; alerts: number }> {
  return db.transaction().execute(async (trx) => {
    const state = await readState<{ watermark: number }>(trx, "alerts.outliers");
    if (!state) {
      // First run: flags from before alerts existed are not news.
      const max = await trx.selectFrom("outlier_flags").select(sql<number>`coalesce(max(id), 0)`.as("id")).executeTakeFirstOrThrow();
      await writeState(trx, "alerts.outliers", { watermark: max.id });
      return { flags: 0, alerts: 0 };
    }
    const groups = await trx
      .selectFrom("outlier_flags")
      .select(["rule", "action_type", sql<number>`count(*)::int`.as("flags"), sql<number>`max(id)`.as("last_id"), sql<Date>`min(occurred_at)`.as("first_at"), sql<Date>`max(occurred_at)`.as("last_at"), sql<string>`min(message)`.as("example")])
      .where("id", ">", state.watermark)
      .groupBy(["rule", "action_type"])
      .orderBy("rule")
      .execute();
    let alerts = 0;
    for (const g of groups) {
      const query = new URLSearchParams({ rule: g.rule, ...(g.action_type ? { type: g.action_type } : {}) });
      const queued = await enqueueAlert(trx, {
        type: "outlier.flagged",
        title: `${g.flags} new outlier flag${g.flags === 1 ? "" : "s"}: ${g.rule}${g.action_type ? ` (${g.action_type})` : ""}`,
        text: `${g.flags} new flag${g.flags === 1 ? "" : "s"} of rule ${g.rule}${g.action_type ? ` for ${g.action_type}` : ""} between ${g.first_at.toISOString()} and ${g.last_at.toISOString()}, e.g. “${g.example}”.`,
        path: `/outliers?${query.toString()}`,
        details: { rule: g.rule, action_type: g.action_type, count: g.flags, first_occurred_at: g.first_at.toISOString(), last_occurred_at: g.last_at.toISOString() },
        dedupeKey: `outliers:${g.rule}:${g.action_type ?? ""}:${g.last_id}`,
      });
      if (queued) alerts += 1;
    }
    const flags = groups.reduce((n, g) => n + g.flags, 0);
    if (groups.length) await writeState(trx, "alerts.outliers", { watermark: Math.max(...groups.map((g) => g.last_id)) });
    return { flags, alerts };
  });
}

/** Action-type drift: one alert each time the drift state changes to a new non-empty one. */
export async function evaluateDriftAlerts(db: Kysely<Database>): Promise<{ alerted: boolean }> {
  const report = await checkActionTypeDrift(db);
  const key = driftStateKey(report.items);
  return db.transaction().execute(async (trx) => {
    const last = await readState<{ state: string }>(trx, "alerts.drift");
    if (last?.state === key) return { alerted: false };
    await writeState(trx, "alerts.drift", { state: key });
    if (!report.items.length) return { alerted: false };
    await enqueueAlert(trx, {
      type: "drift.detected",
      title: `Action-type drift: ${report.items.length} problem${report.items.length === 1 ? "" : "s"}`,
      text: report.items.map((i) => i.message).join("; "),
      path: "/action-types",
      details: { items: report.items, checked_at: report.checkedAt },
    });
    return { alerted: true };
  });
}

/**
 * Ingest silent: no usage row for a rule's N minutes. One alert per silence (named by the last
 * row's time), so a long outage is one message and the next one after ingest resumes is another.
 */
export async function evaluateIngestSilence(db: Kysely<Database>, now: Date = new Date()): Promise<{ alerts: number }> {
  const rules = await db
    .selectFrom("alert_rules")
    .select(["id", "name", "params", "channel"])
    .where("type", "=", "ingest.silent")
    .where("enabled", "=", true)
    .where((eb) => eb.or([eb("muted_until", "is", null), eb("muted_until", "<=", now)]))
    .execute();
  if (!rules.length) return { alerts: 0 };
  const last = await db.selectFrom("token_usage").select(sql<Date | null>`max(created_at)`.as("at")).executeTakeFirstOrThrow();
  if (!last.at) return { alerts: 0 };
  const silentMs = now.getTime() - last.at.getTime();
  let alerts = 0;
  for (const rule of rules) {
    const parsed = silenceRuleSchema.safeParse(rule.params);
    if (!parsed.success) {
      logger.warn({ ruleId: rule.id }, "alert rule with unreadable params skipped");
      continue;
    }
    if (silentMs < parsed.data.minutes * 60_000) continue;
    const queued = await enqueueAlert(db, {
      type: "ingest.silent",
      title: `Ingest silent for ${Math.floor(silentMs / 60_000)} minutes`,
      text: `No usage row has arrived since ${last.at.toISOString()} (rule “${rule.name}”: ${parsed.data.minutes} minutes).`,
      path: "/usage",
      details: { rule_id: rule.id, minutes: parsed.data.minutes, last_usage_at: last.at.toISOString() },
      dedupeKey: `silent:${rule.id}:${last.at.toISOString()}`,
      channels: channelsFor(rule.channel),
    });
    if (queued) alerts += 1;
  }
  return { alerts };
}
