import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { action, loader } from "~/routes/overrides/route";
import { getOverride, previewImpact } from "~/models/overrides.server";
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
