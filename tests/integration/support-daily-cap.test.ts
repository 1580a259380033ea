import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { action as ledgerApiAction } from "../../app/routes/api.v1.ledger/route";
import { action as userAction } from "../../app/routes/user/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

// The defaults, stated so the test does not depend on them: 10,000 per adjustment, 50,000 per rolling 24 h.
process.env.TOKENBOARD_SUPPORT_ADJUST_LIMIT = "10000";
process.env.TOKENBOARD_SUPPORT_DAILY_LIMIT = "50000";

/**
 * Issue 23: the support limit was per adjustment only, so 20 grants of 10,000 in a row passed.
 * Now one support member adjusts one user by at most the daily limit in any rolling 24 hours.
 */
type RouteFunction = (args: { request: Request; params: Record<string, string>; context: object }) => Promise<unknown>;

let t: TestDatabase;
let support: TestStaff;
let otherSupport: TestStaff;
let admin: TestStaff;

beforeAll(async () => {
  t = await createTestDatabase();
  support = await staffSession(t.db, "support");
  otherSupport = await staffSession(t.db, "support");
  admin = await staffSession(t.db, "admin");
});
afterAll(async () => t?.drop());

function apiGrant(staff: TestStaff, userId: string, amount: number, kind: "grant" | "deduct" = "grant", key = randomUUID()): Promise<Response> {
  const body = JSON.stringify({ user_id: userId, amount, kind, reason: "support ticket 4411", idempotency_key: key });
  const request = requestAs(staff, "/api/v1/ledger", { method: "POST", body, headers: { "content-type": "application/json" } });
  return (ledgerApiAction as RouteFunction)({ request, params: {}, context: {} }) as Promise<Response>;
}

async function adjustedBy(staff: TestStaff, userId: string): Promise<number> {
  const r = await sql<{ n: number }>`SELECT COALESCE(sum(abs(amount)), 0)::bigint AS n FROM ledger_entries WHERE user_id = ${userId} AND actor_id = ${staff.id}`.execute(t.db);
  return Number(r.rows[0]?.n ?? 0);
}

describe("support's rolling daily cap per user", () => {
  it("20 grants of 10,000 in a row: the first 5 pass, the rest are refused naming the limit and what is left", async () => {
    const user = randomUUID();
    const statuses: number[] = [];
    let refusal = "";
    for (let i = 0; i < 20; i += 1) {
      const response = await apiGrant(support, user, 10_000);
      statuses.push(response.status);
      if (response.status !== 201 && !refusal) refusal = await response.text();
    }
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.slice(5).every((s) => s === 403), JSON.stringify(statuses)).toBe(true);
    expect(refusal).toMatch(/50,000 tokens per user in any 24 hours/);
    expect(refusal).toMatch(/0 left/);
    expect(await adjustedBy(support, user)).toBe(50_000);
  });

  it("grants and deducts both count; what is left is said; another support member has their own cap", async () => {
    const user = randomUUID();
    expect((await apiGrant(support, user, 10_000)).status).toBe(201);
    expect((await apiGrant(support, user, 10_000, "deduct")).status).toBe(201);
    for (let i = 0; i < 3; i += 1) expect((await apiGrant(support, user, 9_000)).status).toBe(201);
    const refused = await apiGrant(support, user, 5_000);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toMatch(/3,000 left/);
    expect((await apiGrant(support, user, 3_000)).status).toBe(201);
    expect((await apiGrant(otherSupport, user, 10_000)).status).toBe(201);
  });

  it("a replay of an applied adjustment still answers its first result at the cap", async () => {
    const user = randomUUID();
    const key = randomUUID();
    expect((await apiGrant(support, user, 10_000, "grant", key)).status).toBe(201);
    for (let i = 0; i < 4; i += 1) expect((await apiGrant(support, user, 10_000)).status).toBe(201);
    const replay = await apiGrant(support, user, 10_000, "grant", key);
    expect(replay.status).toBe(200);
    expect(((await replay.json()) as { idempotent_replay: boolean }).idempotent_replay).toBe(true);
  });

  it("entries older than 24 hours do not count", async () => {
    const user = randomUUID();
    for (let i = 0; i < 5; i += 1) expect((await apiGrant(support, user, 10_000)).status).toBe(201);
    await sql`UPDATE ledger_entries SET created_at = now() - interval '25 hours' WHERE user_id = ${user}`.execute(t.db);
    expect((await apiGrant(support, user, 10_000)).status).toBe(201);
  });

  it("admins are exempt", async () => {
    const user = randomUUID();
    for (let i = 0; i < 3; i += 1) expect((await apiGrant(admin, user, 30_000)).status).toBe(201);
  });

  it("the page's form refuses past the cap with the limit and what is left on the amount field", async () => {
    const user = randomUUID();
    const post = (amount: number) =>
      (userAction as RouteFunction)({
        request: requestAs(support, `/users/${user}`, { method: "POST", body: new URLSearchParams({ intent: "apply", kind: "grant", amount: String(amount), reason: "support ticket 4411", idempotency_key: randomUUID() }) }),
        params: { userId: user },
        context: {},
      });
    for (const amount of [10_000, 10_000, 10_000, 10_000, 5_000]) expect(((await post(amount)) as Response).status).toBe(302);
    const refused = (await post(10_000)) as { data: { errors: Record<string, string> }; init: { status: number } };
    expect(refused.init?.status).toBe(403);
    expect(refused.data.errors.amount).toMatch(/50,000 tokens per user in any 24 hours; 5,000 left/);
    expect(((await post(5_000)) as Response).status).toBe(302);
    expect(await adjustedBy(support, user)).toBe(50_000);
  });

  it("N concurrent grants by one support member for one user never sum above the cap", async () => {
    const user = randomUUID();
    const responses = await Promise.all(Array.from({ length: 24 }, () => apiGrant(support, user, 7_000)));
    const applied = responses.filter((r) => r.status === 201).length;
    expect(responses.every((r) => r.status === 201 || r.status === 403)).toBe(true);
    expect(applied).toBe(7);
    expect(await adjustedBy(support, user)).toBe(49_000);
    // Both pages and the API share the cap: two forms and two API calls at once, from 49,000 used.
    const mixed = await Promise.all([apiGrant(support, user, 1_000), apiGrant(support, user, 1_000)]);
    expect(mixed.filter((r) => r.status === 201)).toHaveLength(1);
    expect(await adjustedBy(support, user)).toBe(50_000);
  });
});
