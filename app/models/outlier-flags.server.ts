/**
 * Reading and acknowledging outlier flags (the job that writes them is outliers.server.ts).
 * Used by the /outliers page and by any page that lists a user's or a type's flags.
 */
import { sql, type Kysely } from "kysely";
import { DateTime } from "luxon";
import type { Database, OutlierStatus } from "../../db/types";
import { formatFlagNumbers, RULE_LABELS, type RuleName } from "../domain/outlier-rules";
import { recordAudit, type Actor } from "./audit.server";

export interface OutlierFilter {
  rule?: RuleName;
  actionType?: string;
  route?: string;
  userId?: string;
  status?: OutlierStatus;
  /** occurred_at range: start inclusive, end exclusive. */
  start?: Date;
  end?: Date;
}

export const OUTLIER_SORTS = ["occurred_at", "rule", "action_type", "route", "observed", "status"] as const;
export type OutlierSort = (typeof OUTLIER_SORTS)[number];

export interface OutlierFlagView {
  id: number;
  rule: RuleName;
  ruleLabel: string;
  /** occurred_at in the viewer's zone, "yyyy-MM-dd HH:mm". */
  when: string;
  day: string | null;
  actionType: string | null;
  route: string | null;
  userId: string | null;
  numbers: string;
  message: string;
  status: OutlierStatus;
  ackNote: string | null;
  ackBy: string | null;
  ackWhen: string | null;
  /** The raw rows behind the flag (the /usage drill-down). */
  usageHref: string;
}

function filtered(db: Kysely<Database>, filter: OutlierFilter) {
  let q = db.selectFrom("outlier_flags as f");
  if (filter.rule) q = q.where("f.rule", "=", filter.rule);
  if (filter.actionType) q = q.where("f.action_type", "=", filter.actionType);
  if (filter.route) q = q.where("f.route", "=", filter.route);
  if (filter.userId) q = q.where("f.user_id", "=", filter.userId);
  if (filter.status) q = q.where("f.status", "=", filter.status);
  if (filter.start) q = q.where("f.occurred_at", ">=", filter.start);
  if (filter.end) q = q.where("f.occurred_at", "<", filter.end);
  return q;
}

function usageHref(f: { action_type: string | null; route: string | null; user_id: string | null; day: string | null }): string {
  const params = new URLSearchParams();
  if (f.action_type) params.set("type", f.action_type);
  if (f.route) params.set("route", f.route);
  if (f.user_id) params.set("user", f.user_id);
  if (f.day) {
    params.set("from", f.day);
    params.set("to", f.day);
    params.set("tz", "UTC");
  }
  return `/usage?${params.toString()}`;
}

function localTime(instant: Date, tz: string): string {
  return DateTime.fromJSDate(instant, { zone: tz }).toFormat("yyyy-MM-dd HH:mm");
}

export async function listOutlierFlags(
  db: Kysely<Database>,
  filter: OutlierFilter,
  options: { sort?: OutlierSort; desc?: boolean; page?: number; pageSize?: number; tz?: string } = {},
): Promise<{ flags: OutlierFlagView[]; total: number }> {
  const { sort = "occurred_at", desc = true, page = 1, pageSize = 50, tz = "UTC" } = options;
  const direction = desc ? "desc" : "asc";
  const [rows, count] = await Promise.all([
    filtered(db, filter)
      .leftJoin("staff_users as s", "s.id", "f.acknowledged_by")
      .select([
        "f.id", "f.rule", "f.action_type", "f.route", "f.user_id", "f.day", "f.observed", "f.expected_low", "f.expected_high",
        "f.message", "f.status", "f.ack_note", "f.acknowledged_at", "f.occurred_at", "s.email as ack_by",
      ])
      .orderBy(`f.${sort}`, direction)
      .orderBy("f.id", direction)
      .limit(pageSize)
      .offset((page - 1) * pageSize)
      .execute(),
    filtered(db, filter).select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return {
    total: Number(count.n),
    flags: rows.map((r) => ({
      id: r.id,
      rule: r.rule as RuleName,
      ruleLabel: RULE_LABELS[r.rule as RuleName] ?? r.rule,
      when: localTime(r.occurred_at, tz),
      day: r.day,
      actionType: r.action_type,
      route: r.route,
      userId: r.user_id,
      numbers: formatFlagNumbers(r.rule, r.observed, r.expected_low, r.expected_high),
      message: r.message,
      status: r.status,
      ackNote: r.ack_note,
      ackBy: r.ack_by,
      ackWhen: r.acknowledged_at ? localTime(r.acknowledged_at, tz) : null,
      usageHref: usageHref(r),
    })),
  };
}

export interface RuleCount {
  rule: string;
  open: number;
  acknowledged: number;
}

/** Flags per rule and status for the same filter (the rule itself left out, so every rule shows). */
export async function countOutliersByRule(db: Kysely<Database>, filter: OutlierFilter): Promise<RuleCount[]> {
  const rows = await filtered(db, { ...filter, rule: undefined, status: undefined })
    .select([
      "f.rule",
      sql<number>`count(*) FILTER (WHERE f.status = 'open')::int`.as("open"),
      sql<number>`count(*) FILTER (WHERE f.status = 'acknowledged')::int`.as("acknowledged"),
    ])
    .groupBy("f.rule")
    .execute();
  return rows;
}

export type AcknowledgeResult = { ok: true; alreadyAcknowledged: boolean } | { ok: false; notFound: true };

/**
 * Marks a flag acknowledged with a note, audited in the same transaction. A second
 * acknowledgement changes nothing and writes no audit row: the first one stands.
 */
/** `id` as exact decimal text (app/domain/inputs.ts bigintIdSchema): any int8, also beyond 2^53. */
export async function acknowledgeOutlier(db: Kysely<Database>, actor: Actor, idText: string, note: string): Promise<AcknowledgeResult> {
  const id = sql<number>`${idText}::bigint`;
  return db.transaction().execute(async (trx) => {
    const flag = await trx.selectFrom("outlier_flags").select(["id", "rule", "status", "message"]).where("id", "=", id).forUpdate().executeTakeFirst();
    if (!flag) return { ok: false, notFound: true } as const;
    if (flag.status === "acknowledged") return { ok: true, alreadyAcknowledged: true } as const;
    await trx
      .updateTable("outlier_flags")
      .set({ status: "acknowledged", acknowledged_by: actor.id, acknowledged_at: new Date(), ack_note: note })
      .where("id", "=", id)
      .execute();
    await recordAudit(trx, actor, {
      action: "outlier.acknowledge",
      targetType: "outlier_flag",
      targetId: idText,
      before: { status: flag.status },
      after: { status: "acknowledged", note },
      reason: note,
    });
    return { ok: true, alreadyAcknowledged: false } as const;
  });
}
