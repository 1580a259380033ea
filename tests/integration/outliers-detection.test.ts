import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectOutliers } from "../../app/models/outliers.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { allowUnregisteredTypes, insertUsage, normalRows, PLANTED, plantedRows } from "./outliers-fixtures";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await allowUnregisteredTypes(t.db);
});
afterAll(async () => t.drop());

async function flags() {
  return t.db.selectFrom("outlier_flags").selectAll().orderBy("id").execute();
}

describe("outlier detection job", () => {
  it("flags nothing on normal usage", async () => {
    await insertUsage(t.db, normalRows());
    const report = await detectOutliers(t.db, { full: true });
    expect(report.skipped).toBe(false);
    expect(await flags()).toEqual([]);
  });

  it("finds every planted case, one flag each, with the numbers behind it", async () => {
    await insertUsage(t.db, plantedRows());
    const report = await detectOutliers(t.db, { full: true });
    const all = await flags();
    expect(all.map((f) => f.rule).sort()).toEqual(
      ["failure_spike", "out_of_range", "out_of_range", "override_mismatch", "unexpected_route", "unregistered_type", "user_spike"].sort(),
    );
    expect(report.inserted).toBe(7);

    const above = all.find((f) => f.rule === "out_of_range" && f.observed === PLANTED.aboveRange.tokens);
    expect(above).toMatchObject({ action_type: "chat_conversation", expected_low: 2_000, expected_high: 5_000, day: PLANTED.aboveRange.day });
    expect(above?.usage_id).toBeTruthy();
    expect(all.find((f) => f.rule === "out_of_range" && f.observed === PLANTED.belowRange.tokens)?.details).toMatchObject({ position: "below", distance: 150 });
    expect(all.find((f) => f.rule === "override_mismatch")).toMatchObject({ action_type: "image_generation", observed: 30, expected_low: 25 });
    expect(all.find((f) => f.rule === "unexpected_route")).toMatchObject({ action_type: "chat_conversation", route: "/api/vision/chat", observed: 3, day: PLANTED.wrongRoute.day });
    expect(all.find((f) => f.rule === "unregistered_type")).toMatchObject({ action_type: "vibrational_analysis", observed: 5, day: PLANTED.unregistered.day });
    const spike = all.find((f) => f.rule === "user_spike");
    expect(spike).toMatchObject({ user_id: PLANTED.spikeUser, day: PLANTED.spikeDay });
    expect(spike?.message).toMatch(/their median of/);
    const failures = all.find((f) => f.rule === "failure_spike");
    expect(failures).toMatchObject({ action_type: "frequency_flip", day: PLANTED.failureSpike.day });
    expect(failures?.details).toMatchObject({ failures: 30 });
  });

  it("a re-run adds no flag and changes none", async () => {
    const before = await flags();
    const report = await detectOutliers(t.db, { full: true });
    expect(report.inserted).toBe(0);
    expect(Object.values(report.rules).reduce((n, r) => n + r.updated, 0)).toBe(0);
    expect(await flags()).toEqual(before);
  });

  it("an incremental run sees a late row inside the lookback and nothing older", async () => {
    const lateAt = new Date(Date.now() - 86_400_000);
    await insertUsage(t.db, [
      { user_id: PLANTED.spikeUser, action_type: "prompt_suggestions", route: "/api/viva/prompt-suggestions", model_used: "gpt-4o", tokens_used: 9_999, created_at: lateAt },
    ]);
    const report = await detectOutliers(t.db);
    expect(report.from).not.toBeNull();
    expect(new Date(report.from as string).getTime()).toBeGreaterThan(Date.now() - 5 * 86_400_000);
    expect(report.rules.out_of_range).toMatchObject({ candidates: 1, inserted: 1 });
    expect(report.inserted).toBe(1);
  });

  it("late rows on a flagged day update that flag's numbers instead of adding another", async () => {
    await insertUsage(t.db, [
      { user_id: PLANTED.spikeUser, action_type: PLANTED.unregistered.action_type, route: null, model_used: "gpt-4o", tokens_used: 1, created_at: new Date(`${PLANTED.unregistered.day}T23:00:00Z`) },
    ]);
    const report = await detectOutliers(t.db, { since: new Date(`${PLANTED.unregistered.day}T00:00:00Z`) });
    expect(report.inserted).toBe(0);
    expect(report.rules.unregistered_type.updated).toBe(1);
    const flag = await t.db.selectFrom("outlier_flags").selectAll().where("rule", "=", "unregistered_type").executeTakeFirstOrThrow();
    expect(flag.observed).toBe(PLANTED.unregistered.calls + 1);
    expect(flag.message).toContain("6 calls");
  });

  it("compares fixed-cost calls with the override in effect when they were made", async () => {
    const changedAt = new Date("2025-03-10T00:00:00Z");
    await t.db.insertInto("override_history").values({ action_type: "image_generation", old_value: 25, new_value: 40, changed_by: null, changed_by_label: "test", reason: "price change", changed_at: changedAt }).execute();
    await t.db.updateTable("ai_action_token_overrides").set({ token_value: 40 }).where("action_type", "=", "image_generation").execute();
    const user = PLANTED.spikeUser;
    const image = (tokens: number, created_at: Date) => ({ user_id: user, action_type: "image_generation", route: "/lib/services/imageService.ts", model_used: "dall-e-3", tokens_used: tokens, created_at });
    await insertUsage(t.db, [
      image(25, new Date("2025-03-09T12:00:00Z")),
      image(40, new Date("2025-03-10T12:00:00Z")),
      image(25, new Date("2025-03-11T12:00:00Z")),
    ]);
    const report = await detectOutliers(t.db, { since: new Date("2025-03-09T00:00:00Z") });
    expect(report.rules.override_mismatch.inserted).toBe(1);
    const flag = await t.db.selectFrom("outlier_flags").selectAll().where("rule", "=", "override_mismatch").orderBy("id", "desc").executeTakeFirstOrThrow();
    expect(flag).toMatchObject({ observed: 25, expected_low: 40 });
    expect(flag.occurred_at.toISOString()).toBe("2025-03-11T12:00:00.000Z");
  });

  it("a second run while one is in progress is skipped, not doubled", async () => {
    const holder = await t.pool.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(73310401)");
      const report = await detectOutliers(t.db, { full: true });
      expect(report.skipped).toBe(true);
    } finally {
      await holder.query("SELECT pg_advisory_unlock(73310401)");
      holder.release();
    }
  });

  it("keeps the watermark where it was when a run fails midway", async () => {
    const before = await t.db.selectFrom("settings").select("value").where("key", "=", "outlier_job").executeTakeFirstOrThrow();
    await sql`ALTER TABLE tokenboard.outlier_flags RENAME TO outlier_flags_away`.execute(t.db);
    await insertUsage(t.db, [
      { user_id: PLANTED.spikeUser, action_type: "chat_conversation", route: "/api/viva/chat", model_used: "gpt-4o", tokens_used: 99_999, created_at: new Date() },
    ]);
    await expect(detectOutliers(t.db)).rejects.toThrow();
    await sql`ALTER TABLE tokenboard.outlier_flags_away RENAME TO outlier_flags`.execute(t.db);
    const after = await t.db.selectFrom("settings").select("value").where("key", "=", "outlier_job").executeTakeFirstOrThrow();
    expect(after.value).toEqual(before.value);
    const retry = await detectOutliers(t.db);
    expect(retry.rules.out_of_range.inserted).toBe(1);
  });
});
