import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { action, loader } from "~/routes/overrides/route";
import { sql } from "kysely";
import { getOverride, previewImpact, previewWindow } from "~/models/overrides.server";
import { runRollup } from "~/models/rollup.server";
import { seededRandom } from "../support/usage-rows";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

let t: TestDatabase;
let admin: TestStaff;
let support: TestStaff;
beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
  support = await staffSession(t.db, "support");
});
afterAll(async () => t.drop());

function save(staff: TestStaff, fields: Record<string, string>) {
  const request = requestAs(staff, "/overrides", { method: "POST", body: new URLSearchParams(fields) });
  return action({ request, params: {}, context: {} }).catch((e: unknown) => e);
}

describe("overrides", () => {
  it("previews the last 30 days at the new value against the current one", async () => {
    const user = randomUUID();
    const rows = [
      { tokens_used: 2_500, created_at: new Date() },
      { tokens_used: 3_500, created_at: new Date(Date.now() - 5 * 86_400_000) },
      { tokens_used: 9_000, created_at: new Date(Date.now() - 40 * 86_400_000) },
    ];
    await t.db.insertInto("token_usage").values(rows.map((r) => ({ ...r, user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", success: true, error_message: null, metadata: "{}" }))).execute();
    const preview = await previewImpact(t.db, "chat_conversation", 3_000);
    expect(preview).toMatchObject({ calls: 2, tokensUsed: 6_000, currentValue: null, currentCharge: 6_000, newCharge: 6_000 });
    expect((await previewImpact(t.db, "chat_conversation", 100)).newCharge).toBe(200);
  });

  it("the preview's successful calls and tokens equal raw SQL over its window, queued, rolled up and after deletes", async () => {
    const type = "vision_refinement";
    const random = seededRandom(29);
    const window = previewWindow();
    const span = window.end.getTime() - window.start.getTime();
    // Rows spread over the window and 3 days either side of it, a fifth of them failed with tokens of their own.
    const rows = Array.from({ length: 400 }, () => ({
      user_id: randomUUID(), action_type: type, model_used: "gpt-4o", metadata: "{}",
      tokens_used: 1 + Math.floor(random() * 90_000), success: random() > 0.2, error_message: null,
      created_at: new Date(window.start.getTime() - 3 * 86_400_000 + random() * (span + 6 * 86_400_000)),
    }));
    // And rows on the window's edges: its first instant is in, its end is out.
    rows.push({ ...rows[0]!, user_id: randomUUID(), created_at: window.start }, { ...rows[0]!, user_id: randomUUID(), created_at: new Date(window.start.getTime() - 1) });
    const ids = (await t.db.insertInto("token_usage").values(rows).returning("id").execute()).map((r) => r.id);
    const raw = async () => {
      const r = await sql<{ calls: number; tokens: number }>`
        SELECT count(*)::bigint AS calls, COALESCE(sum(tokens_used), 0)::bigint AS tokens FROM token_usage
        WHERE action_type = ${type} AND success AND created_at >= ${window.start} AND created_at < ${window.end}`.execute(t.db);
      return r.rows[0];
    };
    const check = async () => {
      const preview = await previewImpact(t.db, type, 50_000);
      const expected = await raw();
      expect(expected?.calls).toBeGreaterThan(0);
      expect({ calls: preview.calls, tokens: preview.tokensUsed }).toEqual(expected);
      expect(preview.newCharge).toBe((expected?.calls ?? 0) * 50_000);
    };
    await check(); // every row still in the rollup queue
    await runRollup(t.db);
    await check();
    await t.db.deleteFrom("token_usage").where("id", "in", ids.slice(0, 60)).execute();
    await check(); // deletes queued
    await runRollup(t.db);
    await check();
  });

  it("saves a change with its history row and audit row in one go", async () => {
    const response = (await save(admin, { action_type: "image_generation", value: "30", reason: "new DALL-E price" })) as Response;
    expect(response.status).toBe(302);
    expect(await getOverride(t.db, "image_generation")).toBe(30);
    const history = await t.db.selectFrom("override_history").selectAll().where("action_type", "=", "image_generation").where("reason", "=", "new DALL-E price").executeTakeFirstOrThrow();
    expect([history.old_value, history.new_value, history.changed_by]).toEqual([25, 30, admin.id]);
    const audit = await t.db.selectFrom("audit_log").selectAll().where("action", "=", "override.update").where("target_id", "=", "image_generation").execute();
    expect(audit).toHaveLength(1);
  });

  it("removes an override of a type without a registry default, and refuses it for one with a default", async () => {
    await save(admin, { action_type: "chat_conversation", value: "4000", reason: "flat price trial" });
    expect(await getOverride(t.db, "chat_conversation")).toBe(4_000);
    await save(admin, { action_type: "chat_conversation", value: "", reason: "trial over" });
    expect(await getOverride(t.db, "chat_conversation")).toBeNull();
    const refused = await save(admin, { action_type: "transcription", value: "", reason: "try removing" });
    expect((refused as { init: { status: number } }).init.status).toBe(422);
    expect(await getOverride(t.db, "transcription")).toBe(60);
  });

  it.each([
    [{ action_type: "vibrational_analysis", value: "5", reason: "nope" }, "action_type"],
    [{ action_type: "image_generation", value: "-1", reason: "negative" }, "value"],
    [{ action_type: "image_generation", value: "2.5", reason: "fraction" }, "value"],
    [{ action_type: "image_generation", value: "5", reason: "" }, "reason"],
  ])("refuses %o naming the field %s and changes nothing", async (fields, field) => {
    const before = await t.db.selectFrom("override_history").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const result = (await save(admin, fields)) as { data: { errors: Record<string, string> }; init: { status: number } };
    expect(result.init.status).toBe(422);
    expect(Object.keys(result.data.errors)).toContain(field);
    const after = await t.db.selectFrom("override_history").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it("lets support read the page but not edit", async () => {
    const page = await loader({ request: requestAs(support, "/overrides?edit=image_generation&value=1"), params: {}, context: {} });
    expect(page.canEdit).toBe(false);
    expect(page.preview).toBeNull();
    const refused = (await save(support, { action_type: "image_generation", value: "1", reason: "sneaky" })) as Response;
    expect(refused.status).toBe(403);
  });

  it("shows a preview to an admin from the address", async () => {
    const page = await loader({ request: requestAs(admin, "/overrides?edit=image_generation&value=40"), params: {}, context: {} });
    expect(page.preview).toMatchObject({ actionType: "image_generation", newValue: 40, currentValue: 30 });
    const bad = await loader({ request: requestAs(admin, "/overrides?edit=image_generation&value=abc"), params: {}, context: {} });
    expect(bad.valueError).toMatch(/whole number/);
  });
});
