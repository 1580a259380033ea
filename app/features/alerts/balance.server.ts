import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { getEnv } from "../../lib/env.server";
import { enqueueAlert } from "./outbox.server";
import { balanceCrossing, type BalanceSide } from "./rules";

const STATE_KEY = "alerts.balance";
/** Ledger ids are taken before their transaction commits, so a later id can commit first: each run re-reads this many ids below the watermark and skips entries already seen per user. */
const LOOKBACK_IDS = 500;
const BATCH = 5_000;
/** One evaluator at a time, across processes too. */
const LOCK_ID = 0x746b6261; // "tkba"

export interface BalanceRun {
  entries: number;
  alerts: number;
  backlog: boolean;
}

/**
 * Walks the ledger entries written since the last run, in id order, through each user's
 * above/below state: an alert only when an entry's balance_after crosses the user's threshold
 * (their own, else TOKENBOARD_LOW_BALANCE). State, watermark and the alerts commit together, so a
 * crash repeats the run instead of losing or doubling an alert.
 */
export async function evaluateBalanceAlerts(db: Kysely<Database>): Promise<BalanceRun> {
  const defaultThreshold = getEnv().TOKENBOARD_LOW_BALANCE;
  return db.transaction().execute(async (trx) => {
    const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${LOCK_ID}) AS ok`.execute(trx);
    if (!locked.rows[0]?.ok) return { entries: 0, alerts: 0, backlog: false };
    const stateRow = await trx.selectFrom("settings").select("value").where("key", "=", STATE_KEY).executeTakeFirst();
    const watermark = (stateRow?.value as { watermark?: number } | undefined)?.watermark;
    if (watermark === undefined) {
      // First run on an existing ledger: start from now, not by replaying years of crossings.
      const max = await trx.selectFrom("ledger_entries").select(sql<number>`coalesce(max(id), 0)`.as("id")).executeTakeFirstOrThrow();
      await writeWatermark(trx, max.id);
      return { entries: 0, alerts: 0, backlog: false };
    }
    const entries = await trx
      .selectFrom("ledger_entries")
      .select(["id", "user_id", "balance_after"])
      .where("id", ">", Math.max(0, watermark - LOOKBACK_IDS))
      .orderBy("id")
      .limit(BATCH)
      .execute();
    const lastId = entries.at(-1)?.id ?? 0;
    if (lastId <= watermark) return { entries: 0, alerts: 0, backlog: false };

    const userIds = [...new Set(entries.map((e) => e.user_id))];
    const [states, thresholds] = await Promise.all([
      trx.selectFrom("alert_balance_state").selectAll().where("user_id", "in", userIds).execute(),
      trx.selectFrom("alert_balance_thresholds").select(["user_id", "threshold"]).where("user_id", "in", userIds).execute(),
    ]);
    const thresholdOf = new Map(thresholds.map((t) => [t.user_id, t.threshold]));
    const current = new Map(states.map((s) => [s.user_id, { side: (s.below ? "below" : "above") as BalanceSide, lastEntryId: s.last_entry_id, balance: s.balance }]));
    const changed = new Set<string>();
    let alerts = 0;
    for (const entry of entries) {
      const state = current.get(entry.user_id);
      if (state && entry.id <= state.lastEntryId) continue;
      const threshold = thresholdOf.get(entry.user_id) ?? defaultThreshold;
      const crossing = balanceCrossing(state?.side, entry.balance_after, threshold);
      current.set(entry.user_id, { side: crossing.side, lastEntryId: entry.id, balance: entry.balance_after });
      changed.add(entry.user_id);
      if (!crossing.alert) continue;
      const low = crossing.alert === "balance.low";
      const queued = await enqueueAlert(trx, {
        type: crossing.alert,
        userId: entry.user_id,
        title: low ? "Balance below threshold" : "Balance recovered",
        text: low
          ? `User ${entry.user_id} has ${entry.balance_after} tokens left, below the threshold of ${threshold}.`
          : `User ${entry.user_id} is back to ${entry.balance_after} tokens, at or above the threshold of ${threshold}.`,
        path: `/users/${entry.user_id}`,
        details: { balance: entry.balance_after, threshold, ledger_entry_id: entry.id },
        dedupeKey: `${crossing.alert}:${entry.user_id}:${entry.id}`,
      });
      if (queued) alerts += 1;
    }
    if (changed.size) {
      const values = [...changed].map((userId) => {
        const s = current.get(userId)!;
        return { user_id: userId, below: s.side === "below", threshold: thresholdOf.get(userId) ?? defaultThreshold, balance: s.balance, last_entry_id: s.lastEntryId };
      });
      await trx
        .insertInto("alert_balance_state")
        .values(values)
        .onConflict((oc) =>
          oc.column("user_id").doUpdateSet((eb) => ({
            below: eb.ref("excluded.below"),
            threshold: eb.ref("excluded.threshold"),
            balance: eb.ref("excluded.balance"),
            last_entry_id: eb.ref("excluded.last_entry_id"),
            updated_at: sql<Date>`now()`,
          })),
        )
        .execute();
    }
    await writeWatermark(trx, lastId);
    return { entries: entries.length, alerts, backlog: entries.length === BATCH };
  });
}

async function writeWatermark(db: Kysely<Database>, watermark: number): Promise<void> {
  const value = JSON.stringify({ watermark });
  await db
    .insertInto("settings")
    .values({ key: STATE_KEY, value })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: new Date() }))
    .execute();
}
