/**
 * Issue 23's staff self-service through the pages' loaders and actions: one's own password and
 * time zone (/account), the admin's one-time reset link and unlock (/staff, /reset/:token).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FREE_FAILED_LOGINS, getStaff, login } from "~/lib/auth.server";
import { action as accountAction, loader as accountLoader } from "~/routes/account/route";
import { loader as reportsLoader } from "~/routes/reports/route";
import { loader as exportLoader } from "~/routes/reports.export/route";
import { action as resetAction, loader as resetLoader } from "~/routes/reset/route";
import { action as staffAction, loader as staffLoader } from "~/routes/staff/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, TEST_PASSWORD, type TestStaff } from "../support/staff";

let t: TestDatabase;
let admin: TestStaff;
beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
});
afterAll(async () => t.drop());

type Outcome = { status: number; headers: Headers; data: unknown };
async function outcome(promise: Promise<unknown>): Promise<Outcome> {
  try {
    const value = (await promise) as { type?: string; data?: unknown; init?: { status?: number; headers?: HeadersInit } };
    if (value instanceof Response) return { status: value.status, headers: value.headers, data: null };
    if (value?.type === "DataWithResponseInit") return { status: value.init?.status ?? 200, headers: new Headers(value.init?.headers), data: value.data };
    return { status: 200, headers: new Headers(), data: value };
  } catch (thrown) {
    if (thrown instanceof Response) return { status: thrown.status, headers: thrown.headers, data: null };
    throw thrown;
  }
}

const post = (staff: TestStaff | null, url: string, form: Record<string, string>) => requestAs(staff, url, { method: "POST", body: new URLSearchParams(form) });
const anotherSession = async (s: TestStaff, password = TEST_PASSWORD) => {
  const result = await login(new Request("http://localhost/login", { headers: { "x-tokenboard-client-ip": "192.0.2.50" } }), s.email, password, t.db);
  if (!result.ok) throw new Error(result.message);
  return { ...s, cookie: result.setCookie.split(";")[0] as string };
};
const loginWorks = async (email: string, password: string) => (await login(new Request("http://localhost/login", { headers: { "x-tokenboard-client-ip": "192.0.2.99" } }), email, password, t.db)).ok;
const auditActions = async (targetId: string) => (await t.db.selectFrom("audit_log").select("action").where("target_id", "=", targetId).execute()).map((a) => a.action);

describe("changing one's own password", () => {
  it("needs the current password; the new one works, the old one fails, other sessions end and this one stays", async () => {
    const me = await staffSession(t.db, "analyst");
    const other = await anotherSession(me);
    const result = await outcome(accountAction({ request: post(me, "/account", { intent: "password", current_password: TEST_PASSWORD, new_password: "a new long password", confirm_password: "a new long password" }), params: {}, context: {} }));
    expect(result.status).toBe(200);
    expect(await getStaff(requestAs(me, "/"), t.db)).not.toBeNull();
    expect(await getStaff(requestAs(other, "/"), t.db)).toBeNull();
    expect(await loginWorks(me.email, "a new long password")).toBe(true);
    expect(await loginWorks(me.email, TEST_PASSWORD)).toBe(false);
    expect(await auditActions(me.id)).toContain("staff.password_change");
  });

  it("a wrong current password, a short or unconfirmed new one are refused by field and change nothing", async () => {
    const me = await staffSession(t.db, "support");
    const cases: [Record<string, string>, string][] = [
      [{ current_password: "not it", new_password: "a new long password", confirm_password: "a new long password" }, "current_password"],
      [{ current_password: TEST_PASSWORD, new_password: "short", confirm_password: "short" }, "new_password"],
      [{ current_password: TEST_PASSWORD, new_password: "a new long password", confirm_password: "another one here" }, "confirm_password"],
    ];
    for (const [form, field] of cases) {
      const result = await outcome(accountAction({ request: post(me, "/account", { intent: "password", ...form }), params: {}, context: {} }));
      expect(result.status).toBe(422);
      const reply = (result.data as { result: { error: Record<string, string[]>; initialValue?: Record<string, unknown> } }).result;
      expect(Object.keys(reply.error)).toEqual([field]);
      // Passwords are not sent back to the page.
      expect(JSON.stringify(reply.initialValue ?? {})).not.toContain(TEST_PASSWORD);
    }
    expect(await loginWorks(me.email, TEST_PASSWORD)).toBe(true);
  });
});

describe("choosing one's time zone", () => {
  it("stores a valid IANA zone; reports and the monthly export default to it", async () => {
    const me = await staffSession(t.db, "analyst");
    const saved = await outcome(accountAction({ request: post(me, "/account", { intent: "timezone", timezone: "Asia/Tokyo" }), params: {}, context: {} }));
    expect(saved.status).toBe(200);
    const page = (await accountLoader({ request: requestAs(me, "/account"), params: {}, context: {} })) as { timezone: string; zones: string[] };
    expect(page.timezone).toBe("Asia/Tokyo");
    expect(page.zones).toContain("Europe/Berlin");
    const report = (await reportsLoader({ request: requestAs(me, "/reports?month=2026-01"), params: {}, context: {} })) as unknown as { tz: string };
    expect(report.tz).toBe("Asia/Tokyo");
    const csv = await outcome(exportLoader({ request: requestAs(me, "/reports/export.csv?month=2026-01"), params: {}, context: {} }));
    expect(csv.headers.get("content-disposition")).toContain("Asia_Tokyo");
    expect(await auditActions(me.id)).toContain("staff.timezone");
  });

  it("refuses an unknown zone naming the field", async () => {
    const me = await staffSession(t.db, "support");
    const result = await outcome(accountAction({ request: post(me, "/account", { intent: "timezone", timezone: "Mars/Olympus" }), params: {}, context: {} }));
    expect(result.status).toBe(422);
    expect((result.data as { result: { error: Record<string, string[]> } }).result.error.timezone?.[0]).toMatch(/unknown time zone/);
    const row = await t.db.selectFrom("staff_users").select("timezone").where("id", "=", me.id).executeTakeFirstOrThrow();
    expect(row.timezone).toBe("UTC");
  });
});

describe("admin-issued reset links", () => {
  async function issueLink(target: TestStaff): Promise<string> {
    const result = await outcome(staffAction({ request: post(admin, "/staff", { intent: "reset_link", staff_id: target.id }), params: {}, context: {} }));
    expect(result.status).toBe(200);
    const url = (result.data as { resetLink: { url: string } }).resetLink.url;
    expect(url).toMatch(/^http:\/\/localhost\/reset\/[\w-]{43}$/);
    return new URL(url).pathname.split("/")[2] as string;
  }
  const setPassword = (token: string, password: string, confirm = password) =>
    outcome(resetAction({ request: post(null, `/reset/${token}`, { new_password: password, confirm_password: confirm }), params: { token }, context: {} }));

  it("is stored hashed, sets a new password once, ends every session of the person and is audited", async () => {
    const member = await staffSession(t.db, "support");
    const token = await issueLink(member);
    const stored = await t.db.selectFrom("staff_password_resets").select("token_hash").where("staff_id", "=", member.id).execute();
    expect(stored.map((r) => r.token_hash)).not.toContain(token);
    const page = await outcome(resetLoader({ request: requestAs(null, `/reset/${token}`), params: { token }, context: {} }));
    expect(page.status).toBe(200);
    expect(page.data).toMatchObject({ email: member.email });
    expect(page.headers.get("cache-control")).toBe("no-store");

    const done = await setPassword(token, "reset long password");
    expect(done.status).toBe(302);
    expect(done.headers.get("location")).toBe("/login?reset=done");
    expect(await getStaff(requestAs(member, "/"), t.db)).toBeNull();
    expect(await loginWorks(member.email, "reset long password")).toBe(true);
    expect(await loginWorks(member.email, TEST_PASSWORD)).toBe(false);
    expect(await auditActions(member.id)).toEqual(expect.arrayContaining(["staff.reset_link", "staff.password_reset"]));

    const again = await setPassword(token, "third long password");
    expect(again.status).toBe(410);
    expect(await loginWorks(member.email, "reset long password")).toBe(true);
    expect((await outcome(resetLoader({ request: requestAs(null, `/reset/${token}`), params: { token }, context: {} }))).status).toBe(404);
  });

  it("an expired link or an earlier link replaced by a newer one does not work", async () => {
    const member = await staffSession(t.db, "analyst");
    const first = await issueLink(member);
    const second = await issueLink(member);
    expect((await setPassword(first, "first long password")).status).toBe(410);
    await t.db.updateTable("staff_password_resets").set({ expires_at: new Date(Date.now() - 1000) }).where("staff_id", "=", member.id).execute();
    expect((await setPassword(second, "second long password")).status).toBe(410);
    expect(await loginWorks(member.email, TEST_PASSWORD)).toBe(true);
  });

  it("a mismatched confirmation is refused by field and uses nothing up", async () => {
    const member = await staffSession(t.db, "support");
    const token = await issueLink(member);
    const result = await setPassword(token, "reset long password", "something else entirely");
    expect(result.status).toBe(422);
    expect((result.data as { error: Record<string, string[]> }).error.confirm_password).toBeDefined();
    expect((await setPassword(token, "reset long password")).status).toBe(302);
  });

  it("only admins may issue one", async () => {
    const support = await staffSession(t.db, "support");
    const result = await outcome(staffAction({ request: post(support, "/staff", { intent: "reset_link", staff_id: support.id }), params: {}, context: {} }));
    expect(result.status).toBe(403);
  });
});

describe("admin unlock", () => {
  it("clears a throttled member's failed logins from every address, shows it on the Staff page and is audited", async () => {
    const member = await staffSession(t.db, "support");
    const ip = "192.0.2.77";
    const attempt = (password: string) => login(new Request("http://localhost/login", { headers: { "x-tokenboard-client-ip": ip } }), member.email, password, t.db);
    for (let i = 0; i < FREE_FAILED_LOGINS + 1; i += 1) await attempt(`wrong-${i}`);
    expect(await attempt(TEST_PASSWORD)).toMatchObject({ ok: false, reason: "throttled" });
    const before = (await staffLoader({ request: requestAs(admin, "/staff"), params: {}, context: {} })) as { staff: { id: string; throttled: boolean }[] };
    expect(before.staff.find((s) => s.id === member.id)?.throttled).toBe(true);

    const result = await outcome(staffAction({ request: post(admin, "/staff", { intent: "unlock", staff_id: member.id }), params: {}, context: {} }));
    expect(result.status).toBe(200);
    expect((await attempt(TEST_PASSWORD)).ok).toBe(true);
    expect(await auditActions(member.id)).toContain("staff.unlock");
  });

  it("refuses an unknown staff id by field", async () => {
    const result = await outcome(staffAction({ request: post(admin, "/staff", { intent: "unlock", staff_id: "0b6f3c1e-8a2d-4f5b-9c7e-1d2a3b4c5d6e" }), params: {}, context: {} }));
    expect(result.status).toBe(422);
    expect((result.data as { errors: Record<string, string> }).errors.staff_id).toBe("no such staff member");
  });
});

describe("guessing the current password through a session", () => {
  it("counts like failed logins: after five wrong ones the next must wait, even with the right one", async () => {
    const me = await staffSession(t.db, "support");
    const attempt = (current: string) =>
      outcome(accountAction({ request: post(me, "/account", { intent: "password", current_password: current, new_password: "a new long password", confirm_password: "a new long password" }), params: {}, context: {} }));
    for (let i = 0; i < FREE_FAILED_LOGINS; i += 1) expect((await attempt(`guess ${i}`)).status).toBe(422);
    const blocked = await attempt(TEST_PASSWORD);
    expect((blocked.data as { result: { error: Record<string, string[]> } }).result.error.current_password?.[0]).toMatch(/too many wrong passwords: wait 1 second/);
    expect(await loginWorks(me.email, TEST_PASSWORD)).toBe(true);
  });
});
