import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueAlert } from "../../app/features/alerts/outbox.server";
import { evaluateSpendAlerts } from "../../app/features/alerts/spend.server";
import { forgetEnv } from "../../app/lib/env.server";
import { action, loader } from "../../app/routes/alerts/route";
import { requestAs, staffSession, type TestStaff } from "../support/staff";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/** The /alerts page: a threshold's preview counts, audited saves, field errors, resend. */
let t: TestDatabase;
let admin: TestStaff;

beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
  process.env.TOKENBOARD_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook";
  forgetEnv();
});

afterAll(async () => {
  delete process.env.TOKENBOARD_ALERT_WEBHOOK_URL;
  forgetEnv();
  await t.drop();
});

async function post(fields: Record<string, string>) {
  const response = (await action({ request: requestAs(admin, "/alerts", { method: "POST", body: new URLSearchParams(fields) }), params: {}, context: {} })) as unknown as { data: { ok: boolean; errors: Record<string, string>; message: string | null; preview: { lows: number; recoveries: number; users: number } | null; spendPreview?: unknown }; init: { status?: number } | null };
  return { status: response.init?.status ?? 200, ...response.data };
}

let key = 0;
async function entries(userId: string, balances: number[]): Promise<void> {
  for (const balance of balances) {
    key += 1;
    await t.db.insertInto("ledger_entries").values({ user_id: userId, kind: "usage", amount: -1, balance_after: balance, actor_label: "test", idempotency_key: `page-${key}` }).execute();
  }
}

describe("the alerts page", () => {
  it("previews how many balance alerts a threshold would have sent over 30 days, without saving", async () => {
    const a = randomUUID();
    const b = randomUUID();
    await entries(a, [5_000, 400, 300, 2_000, 100]);
    await entries(b, [900, 800]);
    expect((await post({ intent: "preview", threshold: "1000" })).preview).toMatchObject({ lows: 3, recoveries: 1, users: 2 });
    expect((await post({ intent: "preview", threshold: "350" })).preview).toMatchObject({ lows: 2, recoveries: 1, users: 1 });
    expect((await post({ intent: "preview", threshold: "1000", user_id: b })).preview).toMatchObject({ lows: 1, recoveries: 0, users: 1 });
    expect(await t.db.selectFrom("alert_balance_thresholds").selectAll().execute()).toHaveLength(0);
  });

  it("saves a user's threshold with an audit row, and names the bad field otherwise", async () => {
    const user = randomUUID();
    const saved = await post({ intent: "save-threshold", threshold: "250", user_id: user });
    expect(saved).toMatchObject({ ok: true, status: 200 });
    expect(await t.db.selectFrom("alert_balance_thresholds").select("threshold").where("user_id", "=", user).executeTakeFirst()).toEqual({ threshold: 250 });
    const audit = await t.db.selectFrom("audit_log").select(["action", "target_id", "actor_label"]).where("action", "=", "alerts.threshold.set").execute();
    expect(audit).toEqual([{ action: "alerts.threshold.set", target_id: user, actor_label: admin.email }]);

    expect(await post({ intent: "save-threshold", threshold: "-5", user_id: user })).toMatchObject({ status: 422, errors: { threshold: "must be 0 or more" } });
    expect(await post({ intent: "save-threshold", threshold: "10", user_id: "nobody" })).toMatchObject({ status: 422, errors: { user_id: "must be a user id (a UUID)" } });
    expect(await post({ intent: "drop-tables" })).toMatchObject({ status: 422, errors: { intent: "unknown action" } });
    expect(await t.db.selectFrom("alert_balance_thresholds").select("threshold").where("user_id", "=", user).executeTakeFirst()).toEqual({ threshold: 250 });
  });

  it("lists deliveries and resends a dead one under the same alert id, audited", async () => {
    const id = await enqueueAlert(t.db, { type: "ingest.silent", title: "t", text: "x" });
    const row = await t.db.updateTable("alert_outbox").set({ status: "dead", attempts: 12, last_error: "HTTP 500", last_status_code: 500 }).where("id", "=", id!).returning("delivery_id").executeTakeFirstOrThrow();
    const page = (await loader({ request: requestAs(admin, "/alerts"), params: {}, context: {} })) as { deliveries: { id: string; status: string; last_status_code: number | null }[] };
    expect(page.deliveries[0]).toMatchObject({ id, status: "dead", last_status_code: 500 });

    expect(await post({ intent: "resend", delivery_id: String(row.delivery_id) })).toMatchObject({ ok: true });
    expect(await t.db.selectFrom("alert_outbox").select(["id", "status"]).where("delivery_id", "=", row.delivery_id).executeTakeFirst()).toEqual({ id, status: "pending" });
    // A pending delivery is not resent twice.
    expect(await post({ intent: "resend", delivery_id: String(row.delivery_id) })).toMatchObject({ status: 422, errors: { delivery_id: "is not a failed or dead delivery" } });
    expect(await t.db.selectFrom("audit_log").select("target_id").where("action", "=", "alerts.delivery.resend").execute()).toEqual([{ target_id: id }]);
  });
});

describe("spend rules on the alerts page", () => {
  it("previews a rule with counts, saves it audited, mutes and deletes it; a bad field is named", async () => {
    const day = new Date(Date.now() - 2 * 86_400_000);
    await t.db.insertInto("token_usage").values({ user_id: randomUUID(), action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 7_000, created_at: day }).execute();
    const fields = { name: "big days", period: "day", zone: "Asia/Kolkata", threshold: "5000", scope: "total", action_type: "" };
    const preview = await post({ intent: "preview-spend", ...fields });
    expect(preview).toMatchObject({ ok: true, spendPreview: { alerts: 1 } });
    expect(await t.db.selectFrom("alert_rules").select("id").execute()).toHaveLength(0);

    expect(await post({ intent: "create-spend", ...fields, zone: "Mars/Olympus" })).toMatchObject({ status: 422, errors: { zone: "must be an IANA time zone, e.g. Europe/Berlin" } });
    expect(await post({ intent: "create-spend", ...fields, muted_until: "tomorrow" })).toMatchObject({ status: 422, errors: { muted_until: "must be a date and time (UTC), e.g. 2026-12-31T18:00" } });
    expect(await post({ intent: "create-spend", ...fields, scope: "action_type" })).toMatchObject({ status: 422, errors: { action_type: "is required for the action_type scope" } });
    expect(await t.db.selectFrom("alert_rules").select("id").execute()).toHaveLength(0);

    expect(await post({ intent: "create-spend", ...fields, muted_until: "2030-01-01T00:00" })).toMatchObject({ ok: true, spendPreview: { alerts: 1 } });
    const rule = await t.db.selectFrom("alert_rules").select(["id", "muted_until", "params"]).executeTakeFirstOrThrow();
    expect(rule.muted_until?.toISOString()).toBe("2030-01-01T00:00:00.000Z");
    expect(rule.params).toMatchObject({ period: "day", zone: "Asia/Kolkata", threshold: 5_000, scope: "total" });

    expect(await post({ intent: "mute-rule", rule_id: rule.id, mute_hours: "0" })).toMatchObject({ ok: true, message: "Unmuted." });
    expect((await t.db.selectFrom("alert_rules").select("muted_until").executeTakeFirstOrThrow()).muted_until).toBeNull();
    expect(await post({ intent: "delete-rule", rule_id: rule.id })).toMatchObject({ ok: true });
    expect(await post({ intent: "delete-rule", rule_id: rule.id })).toMatchObject({ status: 422, errors: { rule_id: "is not a rule (it may have been deleted)" } });
    const audit = await t.db.selectFrom("audit_log").select("action").where("target_id", "=", rule.id).orderBy("id").execute();
    expect(audit.map((a) => a.action)).toEqual(["alerts.rule.create", "alerts.rule.mute", "alerts.rule.delete"]);
  });
});

describe("rule channels and silence rules", () => {
  it("saves an ingest-silent rule with its channel, and refuses an unknown channel by name", async () => {
    expect(await post({ intent: "create-silence", name: "quiet", minutes: "0", channel: "all" })).toMatchObject({ status: 422, errors: { minutes: "must be at least 1" } });
    expect(await post({ intent: "create-silence", name: "quiet", minutes: "20", channel: "pager" })).toMatchObject({ status: 422, errors: { channel: "must be one of all, webhook, slack, email" } });
    expect(await post({ intent: "create-silence", name: "quiet", minutes: "20", channel: "webhook" })).toMatchObject({ ok: true });
    const rule = await t.db.selectFrom("alert_rules").select(["type", "params", "channel"]).where("name", "=", "quiet").executeTakeFirstOrThrow();
    expect(rule).toEqual({ type: "ingest.silent", params: { minutes: 20 }, channel: "webhook" });
    const page = (await loader({ request: requestAs(admin, "/alerts"), params: {}, context: {} })) as { rules: { name: string; summary: string; channel: string }[] };
    expect(page.rules.find((r) => r.name === "quiet")).toMatchObject({ summary: "ingest silent for 20 minutes", channel: "webhook" });
  });

  it("sends a rule's alerts only to its channel", async () => {
    process.env.TOKENBOARD_ALERT_SLACK_WEBHOOK_URL = "http://127.0.0.1:9/slack";
    forgetEnv();
    try {
      await t.db.deleteFrom("alert_outbox").execute();
      await t.db.deleteFrom("alert_rules").execute();
      await t.db.insertInto("token_usage").values({ user_id: randomUUID(), action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 9_000 }).execute();
      expect(await post({ intent: "create-spend", name: "to slack", period: "day", zone: "UTC", threshold: "100", scope: "total", channel: "slack" })).toMatchObject({ ok: true });
      expect(await post({ intent: "create-spend", name: "to all", period: "day", zone: "UTC", threshold: "200", scope: "total", channel: "all" })).toMatchObject({ ok: true });
      expect(await evaluateSpendAlerts(t.db)).toMatchObject({ alerts: 2 });
      const rows = await t.db.selectFrom("alert_outbox").select(["channel_key", "payload"]).orderBy("channel_key").execute();
      const byRule = (name: string) => rows.filter((r) => (r.payload as { title: string }).title.endsWith(name)).map((r) => r.channel_key);
      expect(byRule("to slack")).toEqual(["slack"]);
      expect(byRule("to all")).toEqual(["slack", "webhook"]);
    } finally {
      delete process.env.TOKENBOARD_ALERT_SLACK_WEBHOOK_URL;
      forgetEnv();
    }
  });
});
