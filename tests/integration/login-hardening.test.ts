/**
 * Issue 23's login defects: the open redirect, the lock-out anyone could cause, the per-address
 * flood, the timing that told staff emails apart, and sessions that outlived a new password.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getStaff, login, FREE_FAILED_LOGINS } from "~/lib/auth.server";
import { verifyPassword } from "~/lib/password.server";
import { createStaff, ensureAdmin } from "~/models/staff.server";
import { action as loginAction, loader as loginLoader } from "~/routes/login/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, TEST_PASSWORD } from "../support/staff";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

let nextAddress = 1;
/** A client address of its own per test, as server/app.ts passes it on. */
const freshAddress = () => `198.51.100.${nextAddress++}`;

function loginRequest(ip: string | null, form?: Record<string, string>): Request {
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
  if (ip) headers["x-tokenboard-client-ip"] = ip;
  return new Request("http://localhost/login", { method: "POST", headers, body: form ? new URLSearchParams(form) : undefined });
}

async function outcome(promise: Promise<unknown>): Promise<{ status: number; headers: Headers; data: unknown }> {
  try {
    const value = (await promise) as { data?: unknown; init?: { status?: number; headers?: HeadersInit } };
    return { status: value.init?.status ?? 200, headers: new Headers(value.init?.headers), data: value.data };
  } catch (thrown) {
    if (thrown instanceof Response) return { status: thrown.status, headers: thrown.headers, data: null };
    throw thrown;
  }
}

async function newStaff(role: "admin" | "support" | "analyst" = "support") {
  const email = `${role}-${Math.random().toString(36).slice(2, 8)}@test.local`;
  await createStaff(t.db, { id: null, label: "test" }, { email, password: TEST_PASSWORD, role });
  return email;
}

describe("redirect after login", () => {
  const payloads = ["//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example/", "/\r\n/evil.example", "\t//evil.example", "/%0d%0aSet-Cookie:x=1", "javascript:alert(1)", "http://localhost.evil.example/"];

  it.each(payloads)("sends %j to / instead of another site", async (redirectTo) => {
    const email = await newStaff();
    const result = await outcome(loginAction({ request: loginRequest(freshAddress(), { email, password: TEST_PASSWORD, redirectTo }), params: {}, context: {} }));
    expect(result.status).toBe(302);
    const location = result.headers.get("location") ?? "";
    expect(new URL(location, "http://localhost").origin).toBe("http://localhost");
    expect([...location].every((c) => c.charCodeAt(0) > 0x1f && c.charCodeAt(0) !== 0x7f)).toBe(true);
    expect(location === "/" || location === "/%0d%0aSet-Cookie:x=1").toBe(true);
  });

  it("keeps a same-site path with its query", async () => {
    const email = await newStaff();
    const result = await outcome(loginAction({ request: loginRequest(freshAddress(), { email, password: TEST_PASSWORD, redirectTo: "/users?q=ana#top" }), params: {}, context: {} }));
    expect(result.headers.get("location")).toBe("/users?q=ana#top");
  });

  it("the login page of a logged-in staff member refuses the same payloads", async () => {
    const s = await staffSession(t.db, "analyst");
    for (const redirectTo of payloads) {
      const request = requestAs(s, `/login?redirectTo=${encodeURIComponent(redirectTo)}`);
      const result = await outcome(loginLoader({ request, params: {}, context: {} }));
      expect(result.headers.get("location")).toMatch(/^\/(%0d%0aSet-Cookie:x=1)?$/);
    }
  });
});

describe("throttling wrong passwords per (email, address)", () => {
  it("an attacker's wrong passwords from another address do not lock the real user out", async () => {
    const email = await newStaff();
    const attacker = freshAddress();
    for (let i = 0; i < FREE_FAILED_LOGINS + 3; i += 1) await login(loginRequest(attacker), email, `guess-${i}`, t.db);
    const real = await login(loginRequest(freshAddress()), email, TEST_PASSWORD, t.db);
    expect(real.ok).toBe(true);
  });

  it(`after ${FREE_FAILED_LOGINS} failures the pair must wait 1 s, then 2 s: 429 with Retry-After, even for the right password`, async () => {
    const email = await newStaff();
    const ip = freshAddress();
    for (let i = 0; i < FREE_FAILED_LOGINS; i += 1) expect(await login(loginRequest(ip), email, `bad-${i}`, t.db)).toMatchObject({ ok: false, reason: "invalid" });
    expect(await login(loginRequest(ip), email, TEST_PASSWORD, t.db)).toMatchObject({ ok: false, reason: "throttled", retryAfterSeconds: 1 });
    const answer = await outcome(loginAction({ request: loginRequest(ip, { email, password: TEST_PASSWORD }), params: {}, context: {} }));
    expect(answer.status).toBe(429);
    expect(answer.headers.get("retry-after")).toBe("1");
    expect((answer.data as { message: string }).message).toMatch(/Too many failed attempts.*wait 1 second/i);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await login(loginRequest(ip), email, "bad-again", t.db)).toMatchObject({ ok: false, reason: "invalid" });
    expect(await login(loginRequest(ip), email, TEST_PASSWORD, t.db)).toMatchObject({ ok: false, reason: "throttled", retryAfterSeconds: 2 });
  });

  it("throttles unknown emails the same way, so answers do not reveal which emails exist", async () => {
    const ip = freshAddress();
    for (let i = 0; i < FREE_FAILED_LOGINS; i += 1) await login(loginRequest(ip), "nobody@test.local", "x", t.db);
    expect(await login(loginRequest(ip), "nobody@test.local", "x", t.db)).toMatchObject({ ok: false, reason: "throttled" });
  });

  it("a success clears the pair's count", async () => {
    const email = await newStaff();
    const ip = freshAddress();
    for (let i = 0; i < FREE_FAILED_LOGINS - 1; i += 1) await login(loginRequest(ip), email, `bad-${i}`, t.db);
    expect((await login(loginRequest(ip), email, TEST_PASSWORD, t.db)).ok).toBe(true);
    for (let i = 0; i < FREE_FAILED_LOGINS - 1; i += 1) await login(loginRequest(ip), email, `bad-${i}`, t.db);
    expect((await login(loginRequest(ip), email, TEST_PASSWORD, t.db)).ok).toBe(true);
  });

  it("restarting with TOKENBOARD_ADMIN_EMAIL/PASSWORD restores a throttled, disabled admin", async () => {
    const email = await newStaff("admin");
    const ip = freshAddress();
    for (let i = 0; i < FREE_FAILED_LOGINS + 2; i += 1) await login(loginRequest(ip), email, `bad-${i}`, t.db);
    await t.db.updateTable("staff_users").set({ disabled_at: new Date() }).where("email", "=", email).execute();
    expect(await ensureAdmin(t.db, email, "restored-password-1")).toBe("updated");
    expect((await login(loginRequest(ip), email, "restored-password-1", t.db)).ok).toBe(true);
  });
});

describe("logins from one address across many emails", () => {
  it("are limited per address: 429 with Retry-After once the address's failures run out", async () => {
    const ip = freshAddress();
    const answers: number[] = [];
    for (let i = 0; i < 40; i += 1) {
      const answer = await outcome(loginAction({ request: loginRequest(ip, { email: `spray-${i}@test.local`, password: "guess" }), params: {}, context: {} }));
      answers.push(answer.status);
      if (answer.status === 429) {
        expect(Number(answer.headers.get("retry-after"))).toBeGreaterThan(0);
        break;
      }
    }
    expect(answers.at(-1)).toBe(429);
    expect(answers.filter((s) => s === 401).length).toBeLessThanOrEqual(30);
    // Another address is not affected.
    const email = await newStaff();
    expect((await login(loginRequest(freshAddress()), email, TEST_PASSWORD, t.db)).ok).toBe(true);
  });
});

describe("login timing", () => {
  it("an unknown email costs a password hash check like a known one (the answer's time does not reveal staff)", async () => {
    const email = await newStaff();
    const stored = await t.db.selectFrom("staff_users").select("password_hash").where("email", "=", email).executeTakeFirstOrThrow();
    const time = async (fn: () => Promise<unknown>) => {
      const start = performance.now();
      await fn();
      return performance.now() - start;
    };
    const verifies: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      verifies.push(await time(() => verifyPassword(stored.password_hash, "wrong")));
      unknown.push(await time(() => login(loginRequest(freshAddress()), `ghost-${i}@test.local`, "wrong", t.db)));
    }
    // The fastest unknown-email login still includes an argon2 verification.
    expect(Math.min(...unknown)).toBeGreaterThan(0.6 * Math.min(...verifies));
  });
});

describe("a new password ends old sessions", () => {
  it("the bootstrap admin's new password from the environment ends its existing sessions", async () => {
    const s = await staffSession(t.db, "admin");
    await ensureAdmin(t.db, s.email, "a brand new password");
    expect(await getStaff(requestAs(s, "/"), t.db)).toBeNull();
  });

  it("the bootstrap with the same password keeps the sessions (a restart logs nobody out)", async () => {
    const s = await staffSession(t.db, "admin");
    await ensureAdmin(t.db, s.email, TEST_PASSWORD);
    expect((await getStaff(requestAs(s, "/"), t.db))?.email).toBe(s.email);
  });
});
