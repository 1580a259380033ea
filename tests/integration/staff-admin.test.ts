import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeStaffRole, createStaffMember, setStaffDisabled } from "~/models/staff-admin.server";
import { action } from "~/routes/staff/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

let t: TestDatabase;
let admin: TestStaff;
beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
});
afterAll(async () => t.drop());

const actor = () => ({ id: admin.id, label: admin.email });

describe("staff management", () => {
  it("creates staff with a hashed password and audits it; a duplicate email names the field", async () => {
    const request = requestAs(admin, "/staff", { method: "POST", body: new URLSearchParams({ intent: "create", email: "New.Support@Test.local", name: "N", role: "support", password: "a long enough password" }) });
    const created = (await action({ request, params: {}, context: {} })) as { ok: boolean };
    expect(created.ok).toBe(true);
    const row = await t.db.selectFrom("staff_users").selectAll().where("email", "=", "new.support@test.local").executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2/);
    const again = await createStaffMember(t.db, actor(), { email: "new.support@test.local", name: "", role: "analyst", password: "another long password" });
    expect(again).toEqual({ ok: false, field: "email", message: expect.stringMatching(/already exists/) });
  });

  it("refuses a short password naming the field", async () => {
    const request = requestAs(admin, "/staff", { method: "POST", body: new URLSearchParams({ intent: "create", email: "x@test.local", role: "support", password: "short" }) });
    const result = (await action({ request, params: {}, context: {} })) as { data: { errors: Record<string, string> } };
    expect(result.data.errors).toHaveProperty("password");
  });

  it("never lets the last active admin be demoted or disabled, even when two admins demote each other at once", async () => {
    const other = await staffSession(t.db, "admin");
    const [a, b] = await Promise.all([
      changeStaffRole(t.db, actor(), other.id, "support"),
      changeStaffRole(t.db, { id: other.id, label: other.email }, admin.id, "support"),
    ]);
    expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
    const admins = await t.db.selectFrom("staff_users").select("id").where("role", "=", "admin").where("disabled_at", "is", null).execute();
    expect(admins).toHaveLength(1);
    const last = admins[0]!.id;
    expect((await setStaffDisabled(t.db, actor(), last, true)).ok).toBe(false);
    expect((await changeStaffRole(t.db, actor(), last, "analyst")).ok).toBe(false);
  });

  it("disabling logs the member out and is audited; enabling restores access", async () => {
    const member = await staffSession(t.db, "support");
    expect((await setStaffDisabled(t.db, actor(), member.id, true)).ok).toBe(true);
    expect(await t.db.selectFrom("staff_sessions").select("id").where("staff_id", "=", member.id).execute()).toHaveLength(0);
    expect((await setStaffDisabled(t.db, actor(), member.id, false)).ok).toBe(true);
    const actions = await t.db.selectFrom("audit_log").select("action").where("target_id", "=", member.id).orderBy("id").execute();
    expect(actions.map((a) => a.action)).toEqual(expect.arrayContaining(["staff.disable", "staff.enable"]));
  });
});
