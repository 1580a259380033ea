import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { logger } from "../../lib/logger.server";
import { recordAudit, type Actor } from "../../models/audit.server";
import { userFacts } from "../../models/rollup.server";
import { channelsFor } from "./channels.server";
import { enqueueAlert } from "./outbox.server";
import { spendPeriod, spendRuleSchema, type RuleChannel, type SpendRule } from "./rules";

export interface SpendOverage {
  userId: string | null;
  tokens: number;
}

/** Tokens of the rule's scope in [start, end), exact (rollups, queue tail, raw edges): the groups over the threshold. */
export async function spendOver(db: Kysely<Database>, rule: SpendRule, range: { start: Date; end: Date }): Promise<SpendOverage[]> {
  const facts = userFacts(range, rule.scope === "action_type" ? { actionType: rule.action_type } : {});
  if (rule.scope === "per_user") {
    const rows = await sql<{ user_id: string; tokens: number }>`
      SELECT user_id, sum(tokens)::bigint AS tokens FROM (${facts}) f GROUP BY user_id HAVING sum(tokens) > ${rule.threshold} ORDER BY user_id`.execute(db);
    return rows.rows.map((r) => ({ userId: r.user_id, tokens: r.tokens }));
  }
  const row = await sql<{ tokens: number }>`SELECT coalesce(sum(tokens), 0)::bigint AS tokens FROM (${facts}) f`.execute(db);
  const tokens = row.rows[0]?.tokens ?? 0;
  return tokens > rule.threshold ? [{ userId: null, tokens }] : [];
}

function describe(rule: SpendRule): string {
  const what = rule.scope === "action_type" ? `action type ${rule.action_type}` : rule.scope === "per_user" ? "one user" : "all usage";
  return `${what}, ${rule.period === "day" ? "daily" : "monthly"} in ${rule.zone}`;
}

/**
 * Checks every enabled, unmuted spend rule for the current period in its zone; an overage is
 * queued once per rule, period, threshold (and user), however often the job runs.
 */
export async function evaluateSpendAlerts(db: Kysely<Database>, now: Date = new Date()): Promise<{ rules: number; alerts: number }> {
  const rules = await db
    .selectFrom("alert_rules")
    .select(["id", "name", "params", "channel"])
    .where("type", "=", "spend.threshold")
    .where("enabled", "=", true)
    .where((eb) => eb.or([eb("muted_until", "is", null), eb("muted_until", "<=", now)]))
    .execute();
  let alerts = 0;
  for (const stored of rules) {
    const parsed = spendRuleSchema.safeParse(stored.params);
    if (!parsed.success) {
      logger.warn({ ruleId: stored.id }, "alert rule with unreadable params skipped");
      continue;
    }
    const rule = parsed.data;
    const period = spendPeriod(rule.period, rule.zone, now);
    for (const over of await spendOver(db, rule, period)) {
      const queued = await enqueueAlert(db, {
        type: "spend.threshold",
        userId: over.userId ?? undefined,
        title: `Spend over ${rule.threshold} tokens: ${stored.name}`,
        text: `${over.userId ? `User ${over.userId} used` : "Usage reached"} ${over.tokens} tokens in ${period.key} (${describe(rule)}), over the threshold of ${rule.threshold}.`,
        path: over.userId ? `/users/${over.userId}` : rule.scope === "action_type" ? `/action-types/${encodeURIComponent(rule.action_type ?? "")}` : "/",
        details: { rule_id: stored.id, period: rule.period, period_key: period.key, zone: rule.zone, scope: rule.scope, action_type: rule.action_type ?? null, threshold: rule.threshold, tokens: over.tokens },
        dedupeKey: `spend:${stored.id}:${rule.threshold}:${period.key}${over.userId ? `:${over.userId}` : ""}`,
        channels: channelsFor(stored.channel),
      });
      if (queued) alerts += 1;
    }
  }
  return { rules: rules.length, alerts };
}

/** What a spend rule would have sent over the last `days` days: one alert per period (and user) over the threshold. */
export async function previewSpendRule(db: Kysely<Database>, rule: SpendRule, now: Date = new Date(), days = 30): Promise<{ alerts: number; periods: string[] }> {
  const periods: string[] = [];
  let alerts = 0;
  const seen = new Set<string>();
  for (let d = 0; d < days; d += 1) {
    const period = spendPeriod(rule.period, rule.zone, new Date(now.getTime() - d * 86_400_000));
    if (seen.has(period.key)) continue;
    seen.add(period.key);
    const over = await spendOver(db, rule, period);
    if (over.length) periods.push(period.key);
    alerts += over.length;
  }
  return { alerts, periods: periods.sort() };
}

export interface NewRule {
  name: string;
  channel?: RuleChannel;
  mutedUntil?: Date | null;
}

export async function createSpendRule(db: Kysely<Database>, actor: Actor, name: string, rule: SpendRule, mutedUntil: Date | null = null, channel: RuleChannel = "all"): Promise<string> {
  return createAlertRule(db, actor, "spend.threshold", { name, channel, mutedUntil }, rule);
}

/** Stores a rule (params already parsed by its schema), with its audit row. */
export async function createAlertRule(db: Kysely<Database>, actor: Actor, type: "spend.threshold" | "ingest.silent", rule: NewRule, params: Record<string, unknown>): Promise<string> {
  return db.transaction().execute(async (trx) => {
    const mutedUntil = rule.mutedUntil ?? null;
    const row = await trx
      .insertInto("alert_rules")
      .values({ type, name: rule.name, params: JSON.stringify(params), channel: rule.channel ?? "all", muted_until: mutedUntil, created_by: actor.id })
      .returning("id")
      .executeTakeFirstOrThrow();
    await recordAudit(trx, actor, { action: "alerts.rule.create", targetType: "alert_rule", targetId: row.id, after: { type, name: rule.name, channel: rule.channel ?? "all", ...params, muted_until: mutedUntil } });
    return row.id;
  });
}

export async function listAlertRules(db: Kysely<Database>) {
  return db.selectFrom("alert_rules").select(["id", "type", "name", "params", "channel", "enabled", "muted_until", "created_at"]).orderBy("created_at", "desc").limit(200).execute();
}

/** Mutes a rule until `mutedUntil` (null unmutes), audited. */
export async function muteAlertRule(db: Kysely<Database>, actor: Actor, ruleId: string, mutedUntil: Date | null): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom("alert_rules").select("muted_until").where("id", "=", ruleId).forUpdate().executeTakeFirst();
    if (!before) return false;
    await trx.updateTable("alert_rules").set({ muted_until: mutedUntil, updated_at: sql<Date>`now()` }).where("id", "=", ruleId).execute();
    await recordAudit(trx, actor, { action: "alerts.rule.mute", targetType: "alert_rule", targetId: ruleId, before, after: { muted_until: mutedUntil } });
    return true;
  });
}

export async function deleteAlertRule(db: Kysely<Database>, actor: Actor, ruleId: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const removed = await trx.deleteFrom("alert_rules").where("id", "=", ruleId).returning(["name", "params"]).executeTakeFirst();
    if (!removed) return false;
    await recordAudit(trx, actor, { action: "alerts.rule.delete", targetType: "alert_rule", targetId: ruleId, before: removed, after: null });
    return true;
  });
}
