import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getStaff, login, registerApiKey, requireApiAccess, requireStaff, sha256 } from "../../app/lib/auth.server";
import { createStaff, ensureAdmin } from "../../app/models/staff.server";
import { action as loginAction } from "../../app/routes/login/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, TEST_PASSWORD } from "../support/staff";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

function loginForm(email: string, password: string, cookie?: string, origin = "http://localhost"): Request {
  const body = new URLSearchParams({ email, password, redirectTo: "/users" });
  return new Request(`${origin}/login`, {
    method: "POST",
    body,
    headers: { "content-type": "application/x-www-form-urlencoded", ...(cookie ? { cookie } : {}) },
  });
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try {
    const value = await promise;
    if (value instanceof Response) return value.status;
    const init = (value as { init?: { status?: number } }).init;
    return init?.status ?? 200;
  } catch (thrown) {
    if (thrown instanceof Response) return thrown.status;
    throw thrown;
  }
}

describe("staff login", () => {
  it("a correct password starts a session in an httpOnly SameSite cookie and redirects", async () => {
    await createStaff(t.db, { id: null, label: "test" }, { email: "ana@test.local", password: TEST_PASSWORD, role: "analyst" });
    let response: Response | undefined;
    try {
      await loginAction({ request: loginForm("Ana@Test.local", TEST_PASSWORD), params: {}, context: {} });
    } catch (thrown) {
      response = thrown as Response;
    }
    expect(response?.status).toBe(302);
    expect(response?.headers.get("location")).toBe("/users");
    const cookie = response?.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^tb_session=[\w-]{40,};/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    const staff = await getStaff(new Request("http://localhost/", { headers: { cookie: cookie.split(";")[0] as string } }), t.db);
    expect(staff?.email).toBe("ana@test.local");
  });

  it("marks the session cookie Secure over https (TOKENBOARD_COOKIE_SECURE=auto), always with on, never with off", async () => {
    await createStaff(t.db, { id: null, label: "test" }, { email: "sec@test.local", password: TEST_PASSWORD, role: "analyst" });
    const cookieOf = async (origin: string) => {
      try {
        await loginAction({ request: loginForm("sec@test.local", TEST_PASSWORD, undefined, origin), params: {}, context: {} });
      } catch (thrown) {
        return (thrown as Response).headers.get("set-cookie") ?? "";
      }
      throw new Error("expected the login to redirect");
    };
    const before = process.env.TOKENBOARD_COOKIE_SECURE;
    try {
      delete process.env.TOKENBOARD_COOKIE_SECURE;
      expect(await cookieOf("https://tokenboard.example")).toMatch(/; Secure(;|$)/);
      expect(await cookieOf("http://localhost")).not.toMatch(/Secure/);
      process.env.TOKENBOARD_COOKIE_SECURE = "on";
      expect(await cookieOf("http://localhost")).toMatch(/; Secure(;|$)/);
      process.env.TOKENBOARD_COOKIE_SECURE = "off";
      expect(await cookieOf("https://tokenboard.example")).not.toMatch(/Secure/);
    } finally {
      if (before === undefined) delete process.env.TOKENBOARD_COOKIE_SECURE;
      else process.env.TOKENBOARD_COOKIE_SECURE = before;
    }
  });

  it("stores the password as an argon2id hash, never in clear", async () => {
    const row = await t.db.selectFrom("staff_users").select("password_hash").where("email", "=", "ana@test.local").executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(row.password_hash).not.toContain(TEST_PASSWORD);
  });

  it("a wrong password is refused with 401 and a message that does not say which part was wrong", async () => {
    const result = await loginAction({ request: loginForm("ana@test.local", "wrong password"), params: {}, context: {} });
    const { data, init } = result as unknown as { data: { message: string }; init: { status: number } };
    expect(init.status).toBe(401);
    expect(data.message).toBe("Email or password is incorrect.");
  });

  it("a malformed email is refused naming the field, without a login attempt", async () => {
    const result = await loginAction({ request: loginForm("not-an-email", "x"), params: {}, context: {} });
    const { data, init } = result as unknown as { data: { errors: Record<string, string> }; init: { status: number } };
    expect(init.status).toBe(400);
    expect(data.errors.email).toBe("Enter a valid email address");
    const attempts = await t.db.selectFrom("login_attempts").selectAll().where("email", "=", "not-an-email").execute();
    expect(attempts).toHaveLength(0);
  });

  // Throttling of wrong passwords: tests/integration/login-hardening.test.ts.

  it("rotates the session on login: a session id set before login stops working", async () => {
    const first = await staffSession(t.db, "admin");
    const result = await login(new Request("http://localhost/login", { headers: { cookie: first.cookie } }), first.email, TEST_PASSWORD, t.db);
    expect(result.ok).toBe(true);
    const newCookie = result.ok ? (result.setCookie.split(";")[0] as string) : "";
    expect(newCookie).not.toBe(first.cookie);
    expect(await getStaff(requestAs(first, "/"), t.db)).toBeNull();
    expect((await getStaff(new Request("http://localhost/", { headers: { cookie: newCookie } }), t.db))?.email).toBe(first.email);
  });

  it("a disabled staff member can neither log in nor use an existing session", async () => {
    const s = await staffSession(t.db, "support");
    await t.db.updateTable("staff_users").set({ disabled_at: new Date() }).where("id", "=", s.id).execute();
    expect(await getStaff(requestAs(s, "/"), t.db)).toBeNull();
    expect((await login(new Request("http://localhost/login"), s.email, TEST_PASSWORD, t.db)).ok).toBe(false);
  });

  it("logins and failed logins are in the audit log", async () => {
    const actions = await t.db.selectFrom("audit_log").select("action").execute();
    expect(actions.map((a) => a.action)).toEqual(expect.arrayContaining(["auth.login", "auth.login_failed"]));
  });
});

describe("server-side permission checks", () => {
  it("sends an anonymous visitor to the login page with a way back", async () => {
    const status = await statusOf(requireStaff(new Request("http://localhost/audit?x=1"), "audit:read"));
    expect(status).toBe(302);
    try {
      await requireStaff(new Request("http://localhost/audit?x=1"), "audit:read");
    } catch (thrown) {
      expect((thrown as Response).headers.get("location")).toBe("/login?redirectTo=%2Faudit%3Fx%3D1");
    }
  });

  it("answers 403 to a staff member whose role lacks the permission", async () => {
    const analyst = await staffSession(t.db, "analyst");
    expect(await statusOf(requireStaff(requestAs(analyst, "/audit"), "audit:read"))).toBe(403);
    expect(await statusOf(requireStaff(requestAs(analyst, "/reports"), "reports:read"))).toBe(200);
  });
});

describe("bootstrap admin", () => {
  it("creates the admin from the environment, and on a later start restores its password and role", async () => {
    expect(await ensureAdmin(t.db, "boot@test.local", "first-password-1")).toBe("created");
    await t.db.updateTable("staff_users").set({ role: "analyst", disabled_at: new Date() }).where("email", "=", "boot@test.local").execute();
    expect(await ensureAdmin(t.db, "boot@test.local", "second-password-2")).toBe("updated");
    const r = await login(new Request("http://localhost/login"), "boot@test.local", "second-password-2", t.db);
    expect(r.ok && r.staff.role).toBe("admin");
  });
});

describe("API keys", () => {
  it("are stored hashed and scoped: an ingest key does not open the ledger", async () => {
    await registerApiKey(t.db, "ingest", "ingest", "ingest-key-abcdefghijklmnop");
    await registerApiKey(t.db, "ledger", "ledger", "ledger-key-abcdefghijklmnop");
    const stored = await t.db.selectFrom("api_keys").select("key_hash").execute();
    expect(stored.map((k) => k.key_hash)).toContain(sha256("ingest-key-abcdefghijklmnop"));
    const bearer = (key: string) => new Request("http://localhost/api/v1/usage", { headers: { authorization: `Bearer ${key}` } });
    await expect(requireApiAccess(bearer("ingest-key-abcdefghijklmnop"), "ingest")).resolves.toMatchObject({ kind: "key", scope: "ingest" });
    expect(await statusOf(requireApiAccess(bearer("ingest-key-abcdefghijklmnop"), "ledger"))).toBe(403);
    expect(await statusOf(requireApiAccess(bearer("ledger-key-abcdefghijklmnop"), "ingest"))).toBe(403);
    expect(await statusOf(requireApiAccess(bearer("no-such-key-abcdefghijkl"), "ingest"))).toBe(401);
    expect(await statusOf(requireApiAccess(new Request("http://localhost/api/v1/usage"), "ingest"))).toBe(401);
  });
});
