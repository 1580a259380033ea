import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSpendRule, evaluateSpendAlerts, previewSpendRule } from "../../app/features/alerts/spend.server";
import { forgetEnv } from "../../app/lib/env.server";
import { SYSTEM_ACTOR } from "../../app/models/audit.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { TEST_USERS } from "../support/usage-rows";

/** Spend alerts read the rollups (here: the queue tail) over the local period of the rule's zone, once per period. */
let t: TestDatabase;
const [alice, bob] = TEST_USERS as [string, string];

beforeAll(async () => {
  t = await createTestDatabase();
  process.env.TOKENBOARD_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook";
  forgetEnv();
});

afterAll(async () => {
  delete process.env.TOKENBOARD_ALERT_WEBHOOK_URL;
  forgetEnv();
  await t.drop();
});

beforeEach(async () => {
  await t.db.deleteFrom("alert_outbox").execute();
  await t.db.deleteFrom("alert_rules").execute();
});

async function usage(userId: string, tokens: number, at: string, actionType = "chat_conversation"): Promise<void> {
  await t.db.insertInto("token_usage").values({ user_id: userId, action_type: actionType, model_used: "gpt-4o", tokens_used: tokens, created_at: new Date(at) }).execute();
}

describe("spend threshold alerts", () => {
  it("counts America/New_York's 23-hour spring day by its local midnights, and alerts once per period", async () => {
    // 2026-03-08 in New York runs 05:00Z to 04:00Z the next day.
    await usage(alice, 600, "2026-03-08T04:59:00Z"); // still 7 March there
    await usage(alice, 700, "2026-03-08T05:00:00Z");
    await usage(bob, 400, "2026-03-09T03:59:00Z");
    await usage(bob, 900, "2026-03-09T04:00:00Z"); // already 9 March
    await createSpendRule(t.db, SYSTEM_ACTOR, "daily total", { period: "day", zone: "America/New_York", threshold: 1_000, scope: "total" });
    const now = new Date("2026-03-09T03:59:30Z");
    expect(await evaluateSpendAlerts(t.db, now)).toEqual({ rules: 1, alerts: 1 });
    expect(await evaluateSpendAlerts(t.db, now)).toEqual({ rules: 1, alerts: 0 });
    const [row] = await t.db.selectFrom("alert_outbox").select(["type", "payload"]).execute();
    expect(row?.type).toBe("spend.threshold");
    expect(row?.payload).toMatchObject({ details: { period_key: "2026-03-08", tokens: 1_100, zone: "America/New_York" } });
  });

  it("uses Asia/Kolkata's and Pacific/Chatham's day boundaries, not UTC's", async () => {
    await usage(alice, 800, "2026-01-09T18:30:00Z"); // 10 Jan 00:00 in Kolkata
    await usage(alice, 300, "2026-01-10T18:29:00Z"); // 10 Jan 23:59 in Kolkata
    await createSpendRule(t.db, SYSTEM_ACTOR, "kolkata", { period: "day", zone: "Asia/Kolkata", threshold: 1_000, scope: "total" });
    await createSpendRule(t.db, SYSTEM_ACTOR, "utc", { period: "day", zone: "UTC", threshold: 1_000, scope: "total" });
    // 10 Jan 10:14Z is 10 Jan 23:59 in Chatham (+13:45): its day began at 9 Jan 10:15Z, holding only the first row.
    await createSpendRule(t.db, SYSTEM_ACTOR, "chatham", { period: "day", zone: "Pacific/Chatham", threshold: 700, scope: "total" });
    const result = await evaluateSpendAlerts(t.db, new Date("2026-01-10T10:14:00Z"));
    expect(result.alerts).toBe(2);
    const keys = (await t.db.selectFrom("alert_outbox").select("payload").execute()).map((r) => (r.payload as { details: { zone: string; period_key: string; tokens: number } }).details);
    expect(keys).toEqual(expect.arrayContaining([
      { ...keys.find((k) => k.zone === "Asia/Kolkata"), period_key: "2026-01-10", tokens: 1_100 },
      { ...keys.find((k) => k.zone === "Pacific/Chatham"), period_key: "2026-01-10", tokens: 800 },
    ]));
    expect(keys.find((k) => k.zone === "UTC")).toBeUndefined();
  });

  it("alerts per user and per action type, and not while a rule is muted", async () => {
    await usage(alice, 5_000, "2026-05-03T12:00:00Z", "image_generation");
    await usage(bob, 500, "2026-05-03T12:00:00Z", "image_generation");
    await usage(bob, 9_000, "2026-05-03T12:00:00Z", "chat_conversation");
    const now = new Date("2026-05-20T00:00:00Z");
    await createSpendRule(t.db, SYSTEM_ACTOR, "per user", { period: "month", zone: "Europe/Berlin", threshold: 4_000, scope: "per_user" });
    await createSpendRule(t.db, SYSTEM_ACTOR, "images", { period: "month", zone: "Europe/Berlin", threshold: 5_200, scope: "action_type", action_type: "image_generation" });
    await createSpendRule(t.db, SYSTEM_ACTOR, "muted", { period: "month", zone: "UTC", threshold: 1, scope: "total" }, new Date("2026-06-01T00:00:00Z"));
    expect(await evaluateSpendAlerts(t.db, now)).toEqual({ rules: 2, alerts: 3 });
    const rows = await t.db.selectFrom("alert_outbox").select(["user_id", "payload"]).orderBy("delivery_id").execute();
    expect(rows.map((r) => [r.user_id, (r.payload as { details: { tokens: number } }).details.tokens])).toEqual(expect.arrayContaining([[alice, 5_000], [bob, 9_500], [null, 5_500]]));
  });

  it("previews a rule over the last 30 days: one alert per period over the threshold", async () => {
    await usage(alice, 2_000, "2026-08-01T12:00:00Z");
    await usage(alice, 2_000, "2026-08-05T12:00:00Z");
    await usage(alice, 500, "2026-08-06T12:00:00Z");
    const preview = await previewSpendRule(t.db, { period: "day", zone: "UTC", threshold: 1_000, scope: "total" }, new Date("2026-08-20T00:00:00Z"));
    expect(preview).toEqual({ alerts: 2, periods: ["2026-08-01", "2026-08-05"] });
    expect(await t.db.selectFrom("alert_outbox").select("id").execute()).toHaveLength(0);
  });
});
