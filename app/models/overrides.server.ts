/**
 * Token overrides (`ai_action_token_overrides`): a fixed number of tokens charged per call of
 * a type. Every change writes the override, its history row and the audit row in one
 * transaction.
 */
import { sql, type Kysely } from "kysely";
import { z } from "zod";
import type { Database } from "../../db/types";
import { actionTypeSchema, getActionType } from "../domain/action-types";
import { reasonSchema } from "../domain/ledger";
import { recordAudit, type Actor } from "./audit.server";
import { usageFacts, type InstantRange } from "./rollup.server";

export const PREVIEW_DAYS = 30;

/** A new override: a whole number ≥ 0, or empty to remove the override. */
export const overrideValueSchema = z
  .string()
  .trim()
  .max(12, "must be a whole number of tokens")
  .transform((v, ctx) => {
    if (v === "") return null;
    if (!/^\d+$/.test(v)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: "must be a whole number ≥ 0, or empty to remove the override" });
      return z.NEVER;
    }
    const n = Number(v);
    if (n > 2_147_483_647) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: "must be at most 2,147,483,647" });
      return z.NEVER;
    }
    return n;
  });

export const overrideChangeSchema = z.object({
  action_type: actionTypeSchema,
  value: overrideValueSchema,
  reason: reasonSchema,
});

export interface OverrideRow {
  action_type: string;
  token_value: number;
  updated_at: Date | null;
}

export async function listOverrides(db: Kysely<Database>): Promise<OverrideRow[]> {
  return db.selectFrom("ai_action_token_overrides").select(["action_type", "token_value", "updated_at"]).orderBy("action_type").execute();
}

export async function getOverride(db: Kysely<Database>, actionType: string): Promise<number | null> {
  const row = await db.selectFrom("ai_action_token_overrides").select("token_value").where("action_type", "=", actionType).executeTakeFirst();
  return row?.token_value ?? null;
}

export interface ImpactPreview {
  actionType: string;
  days: number;
  calls: number;
  tokensUsed: number;
  currentValue: number | null;
  newValue: number | null;
  /** What the last `days` charged: calls × override, or the reported tokens without one. */
  currentCharge: number;
  newCharge: number;
}

const QUARTER_HOUR_MS = 15 * 60_000;

/**
 * The preview's window: the last PREVIEW_DAYS days on the rollups' 15-minute grid, from the
 * quarter hour at or before `now` − 30 days to the end of the current quarter hour.
 */
export function previewWindow(now: number = Date.now()): InstantRange {
  const start = Math.floor((now - PREVIEW_DAYS * 86_400_000) / QUARTER_HOUR_MS) * QUARTER_HOUR_MS;
  const end = Math.floor(now / QUARTER_HOUR_MS) * QUARTER_HOUR_MS + QUARTER_HOUR_MS;
  return { start: new Date(start), end: new Date(end) };
}

/**
 * Last PREVIEW_DAYS of successful calls of the type, charged at the current and at the new value.
 * From the rollups (exact: day and 15-minute rows plus the queue tail): successful calls are
 * calls − failures, their tokens are all tokens less the failed calls' tokens, read from the
 * partial index of failed rows (migration 0013) — one statement, one snapshot.
 */
export async function previewImpact(db: Kysely<Database>, actionType: string, newValue: number | null): Promise<ImpactPreview> {
  const window = previewWindow();
  const [currentValue, totals] = await Promise.all([
    getOverride(db, actionType),
    sql<{ calls: number; tokens: number }>`
      SELECT COALESCE(sum(f.calls - f.failures), 0)::bigint AS calls,
             (COALESCE(sum(f.tokens), 0) - (
               SELECT COALESCE(sum(u.tokens_used), 0) FROM token_usage u
               WHERE u.action_type = ${actionType} AND NOT u.success AND u.created_at >= ${window.start} AND u.created_at < ${window.end}))::bigint AS tokens
      FROM (${usageFacts(window)}) f
      WHERE f.action_type = ${actionType}`.execute(db),
  ]);
  const { calls, tokens } = totals.rows[0] ?? { calls: 0, tokens: 0 };
  const chargeAt = (value: number | null) => (value === null ? tokens : calls * value);
  return { actionType, days: PREVIEW_DAYS, calls, tokensUsed: tokens, currentValue, newValue, currentCharge: chargeAt(currentValue), newCharge: chargeAt(newValue) };
}

export type OverrideChangeResult = { ok: true; changed: boolean; oldValue: number | null; newValue: number | null } | { ok: false; field: string; message: string };

/**
 * Sets (or removes, with `null`) a type's override. A type the registry gives a default
 * cannot be left without one: startup would put the default back behind the admin's back.
 */
export async function setOverride(db: Kysely<Database>, actor: Actor, input: { actionType: string; value: number | null; reason: string }): Promise<OverrideChangeResult> {
  const definition = getActionType(input.actionType);
  if (!definition) return { ok: false, field: "action_type", message: `${input.actionType} is not a registered action type` };
  if (input.value === null && definition.defaultOverride !== null) {
    return { ok: false, field: "value", message: `${input.actionType} must keep an override (registry default ${definition.defaultOverride}); set a different value instead` };
  }
  return db.transaction().execute(async (trx) => {
    // One editor per type at a time, also when no row exists yet to lock.
    await sql`SELECT pg_advisory_xact_lock(hashtext(${`override:${input.actionType}`}))`.execute(trx);
    const oldValue = await getOverride(trx, input.actionType);
    if (oldValue === input.value) return { ok: true, changed: false, oldValue, newValue: input.value } as const;
    if (input.value === null) {
      await trx.deleteFrom("ai_action_token_overrides").where("action_type", "=", input.actionType).execute();
    } else {
      await trx
        .insertInto("ai_action_token_overrides")
        .values({ action_type: input.actionType, token_value: input.value, updated_at: sql`now()` })
        .onConflict((oc) => oc.column("action_type").doUpdateSet({ token_value: input.value as number, updated_at: sql`now()` }))
        .execute();
    }
    await trx
      .insertInto("override_history")
      .values({ action_type: input.actionType, old_value: oldValue, new_value: input.value, changed_by: actor.id, changed_by_label: actor.label, reason: input.reason })
      .execute();
    await recordAudit(trx, actor, {
      action: "override.update",
      targetType: "action_type",
      targetId: input.actionType,
      before: { token_value: oldValue },
      after: { token_value: input.value },
      reason: input.reason,
    });
    return { ok: true, changed: true, oldValue, newValue: input.value } as const;
  });
}

export interface OverrideHistoryPage {
  rows: { id: number; action_type: string; old_value: number | null; new_value: number | null; changed_by_label: string; reason: string; changed_at: Date }[];
  total: number;
}

export async function overrideHistory(db: Kysely<Database>, filter: { actionType?: string }, page: number, pageSize: number): Promise<OverrideHistoryPage> {
  let base = db.selectFrom("override_history");
  if (filter.actionType) base = base.where("action_type", "=", filter.actionType);
  const [rows, count] = await Promise.all([
    base.select(["id", "action_type", "old_value", "new_value", "changed_by_label", "reason", "changed_at"]).orderBy("changed_at", "desc").orderBy("id", "desc").limit(pageSize).offset((page - 1) * pageSize).execute(),
    base.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: count.n };
}
