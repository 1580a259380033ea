import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { evaluateDriftAlerts, evaluateIngestSilence, evaluateOutlierAlerts } from "../../app/features/alerts/sources.server";
import { forgetEnv } from "../../app/lib/env.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { TEST_USERS } from "../support/usage-rows";

/** Outlier bursts grouped into one alert, drift once per state, ingest silence once per silence. */
let t: TestDatabase;

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
});

let flagKey = 0;
async function flag(rule: string, actionType: string): Promise<void> {
  flagKey += 1;
  await t.db
    .insertInto("outlier_flags")
    .values({ rule, dedupe_key: `test-${flagKey}`, action_type: actionType, message: `flag ${flagKey}`, details: "{}", occurred_at: new Date() })
    .execute();
}

async function outbox() {
  return t.db.selectFrom("alert_outbox").select(["type", "payload"]).orderBy("delivery_id").execute();
}

describe("outlier alerts", () => {
  it("sends a burst of flags as one message per rule and action type, with counts and a link", async () => {
    await flag("user_spike", "chat_conversation");
    expect(await evaluateOutlierAlerts(t.db)).toEqual({ flags: 0, alerts: 0 }); // the first run starts after existing flags
    for (let i = 0; i < 25; i += 1) await flag("user_spike", "chat_conversation");
    for (let i = 0; i < 3; i += 1) await flag("out_of_range", "image_generation");
    expect(await evaluateOutlierAlerts(t.db)).toEqual({ flags: 28, alerts: 2 });
    expect(await evaluateOutlierAlerts(t.db)).toEqual({ flags: 0, alerts: 0 });
    const rows = await outbox();
    expect(rows.map((r) => r.payload)).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: "/outliers?rule=user_spike&type=chat_conversation", details: expect.objectContaining({ count: 25 }) }),
      expect.objectContaining({ path: "/outliers?rule=out_of_range&type=image_generation", details: expect.objectContaining({ count: 3 }) }),
    ]));
  });
});

describe("drift alerts", () => {
  it("alerts once per distinct drift state, and again when it changes", async () => {
    expect(await evaluateDriftAlerts(t.db)).toEqual({ alerted: false });
    const overrides = await t.db.selectFrom("ai_action_token_overrides").selectAll().orderBy("action_type").limit(2).execute();
    const [first, second] = overrides as [(typeof overrides)[number], (typeof overrides)[number]];
    await t.db.deleteFrom("ai_action_token_overrides").where("action_type", "=", first.action_type).execute();
    expect(await evaluateDriftAlerts(t.db)).toEqual({ alerted: true });
    expect(await evaluateDriftAlerts(t.db)).toEqual({ alerted: false });
    await t.db.deleteFrom("ai_action_token_overrides").where("action_type", "=", second.action_type).execute();
    expect(await evaluateDriftAlerts(t.db)).toEqual({ alerted: true });
    await t.db.insertInto("ai_action_token_overrides").values([first, second]).execute();
    expect(await evaluateDriftAlerts(t.db)).toEqual({ alerted: false });
    const rows = await outbox();
    expect(rows.map((r) => r.type)).toEqual(["drift.detected", "drift.detected"]);
    expect((rows[0]!.payload as { text: string }).text).toContain(`override missing for ${first.action_type}`);
  });
});

describe("ingest silent", () => {
  it("alerts once per silence longer than the rule's minutes", async () => {
    await t.db.insertInto("alert_rules").values({ type: "ingest.silent", name: "15 min", params: JSON.stringify({ minutes: 15 }) }).execute();
    const last = new Date("2026-06-01T10:00:00Z");
    await t.db.insertInto("token_usage").values({ user_id: TEST_USERS[0]!, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 5, created_at: last }).execute();
    await t.db.deleteFrom("token_usage").where("created_at", ">", last).execute();
    expect(await evaluateIngestSilence(t.db, new Date("2026-06-01T10:14:00Z"))).toEqual({ alerts: 0 });
    expect(await evaluateIngestSilence(t.db, new Date("2026-06-01T10:16:00Z"))).toEqual({ alerts: 1 });
    expect(await evaluateIngestSilence(t.db, new Date("2026-06-01T11:00:00Z"))).toEqual({ alerts: 0 });
    await t.db.insertInto("token_usage").values({ user_id: TEST_USERS[0]!, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 5, created_at: new Date("2026-06-01T11:01:00Z") }).execute();
    expect(await evaluateIngestSilence(t.db, new Date("2026-06-01T11:10:00Z"))).toEqual({ alerts: 0 });
    expect(await evaluateIngestSilence(t.db, new Date("2026-06-01T11:20:00Z"))).toEqual({ alerts: 1 });
    const rows = await outbox();
    expect(rows.map((r) => (r.payload as { details: { last_usage_at: string } }).details.last_usage_at)).toEqual(["2026-06-01T10:00:00.000Z", "2026-06-01T11:01:00.000Z"]);
  });
});
