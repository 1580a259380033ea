import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectOutliers } from "../../app/models/outliers.server";
import { generateDemoData, PLANTED_SETTING } from "../../db/seed/generator";
import type { PlantedCases } from "../../db/seed/usage-rows";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
let planted: PlantedCases;
const NOW = new Date("2026-03-15T12:00:00Z");

beforeAll(async () => {
  t = await createTestDatabase();
  await generateDemoData(t.url, { users: 200, rows: 30_000, days: 60, seed: 7, now: NOW });
  const setting = await t.db.selectFrom("settings").select("value").where("key", "=", PLANTED_SETTING).executeTakeFirstOrThrow();
  planted = setting.value as PlantedCases;
  await detectOutliers(t.db, { full: true, now: NOW });
}, 180_000);
afterAll(async () => t.drop());

const flagsOf = (rule: string) => t.db.selectFrom("outlier_flags").selectAll().where("rule", "=", rule).execute();

describe("the demo data's planted outliers", () => {
  it("every planted out-of-range call has its flag, on the right side", async () => {
    const flags = await flagsOf("out_of_range");
    const byUsage = new Map(flags.map((f) => [f.usage_id, f]));
    expect(planted.rangeOutliers.length).toBeGreaterThan(0);
    for (const p of planted.rangeOutliers) {
      expect(byUsage.get(p.id)?.details, `${p.action_type} ${p.tokens_used}`).toMatchObject({ position: p.position, tokens: p.tokens_used });
    }
  });

  it("every fixed-cost call that differs from its override has its flag", async () => {
    const flagged = new Set((await flagsOf("override_mismatch")).map((f) => f.usage_id));
    for (const p of planted.fixedCostMismatches) expect(flagged.has(p.id), `${p.action_type} ${p.tokens_used}`).toBe(true);
  });

  it("the type on a route the registry does not list is flagged with all its calls", async () => {
    const flags = (await flagsOf("unexpected_route")).filter((f) => f.action_type === planted.wrongRoute.action_type && f.route === planted.wrongRoute.route);
    expect(flags.reduce((n, f) => n + Number(f.observed), 0)).toBe(planted.wrongRoute.ids.length);
  });

  it("the unregistered type is flagged with all its calls", async () => {
    const flags = (await flagsOf("unregistered_type")).filter((f) => f.action_type === planted.unregistered.action_type);
    expect(flags.reduce((n, f) => n + Number(f.observed), 0)).toBe(planted.unregistered.count);
  });

  it("the spike user's spike day is flagged", async () => {
    const flags = (await flagsOf("user_spike")).filter((f) => f.user_id === planted.userSpike.user_id);
    expect(flags.map((f) => f.day)).toContain(planted.userSpike.day);
  });

  it("the failure spike is flagged on its type and day", async () => {
    const flags = await flagsOf("failure_spike");
    expect(flags.map((f) => `${f.action_type} ${f.day}`)).toContain(`${planted.failureSpike.action_type} ${planted.failureSpike.day}`);
  });

  it("normal demo traffic raises no per-call flags and next to no daily ones", async () => {
    const rows = await t.db.selectFrom("outlier_flags").select(["rule", (eb) => eb.fn.countAll<number>().as("n")]).groupBy("rule").execute();
    const count = Object.fromEntries(rows.map((r) => [r.rule, Number(r.n)]));
    expect(count.out_of_range).toBe(planted.rangeOutliers.length);
    expect(count.override_mismatch).toBe(planted.fixedCostMismatches.length);
    expect(count.failure_spike).toBe(1);
    // Days with two or more large in-range calls (blueprints) are real jumps for a user; few.
    expect(count.user_spike).toBeLessThanOrEqual(5);
  });
});
