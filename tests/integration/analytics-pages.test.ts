import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loader as actionTypesLoader } from "../../app/routes/action-types/route";
import { loader as actionTypeLoader } from "../../app/routes/action-type/route";
import { loader as routesLoader } from "../../app/routes/routes/route";
import { loader as usersLoader } from "../../app/routes/users/route";
import { loader as usageLoader } from "../../app/routes/usage/route";
import { runRollup } from "../../app/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";
import { insertUsage, randomUsageRows, seededRandom, TEST_USERS } from "../support/usage-rows";

let t: TestDatabase;
let analyst: TestStaff;
const RANGE = "from=2025-03-01&to=2025-03-31&tz=Asia/Kolkata";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function call(loader: (args: any) => Promise<unknown>, url: string, params: Record<string, string> = {}): Promise<any> {
  return loader({ request: requestAs(analyst, url), params, context: {} });
}

beforeAll(async () => {
  t = await createTestDatabase();
  analyst = await staffSession(t.db, "analyst");
  await insertUsage(t.db, randomUsageRows(seededRandom(5), 1_500, new Date("2025-02-27T00:00:00Z"), new Date("2025-04-02T00:00:00Z")));
  await runRollup(t.db);
  // A tail row not rolled up yet, on a route that must not produce chat_conversation.
  await t.db.insertInto("token_usage").values({ user_id: TEST_USERS[0] as string, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 3_000, route: "/api/transcribe", created_at: "2025-03-15T12:00:00Z" }).execute();
  await t.db.insertInto("app_users").values({ user_id: TEST_USERS[3] as string, email: "Ada.Lovelace@example.com" }).execute();
});
afterAll(async () => t.drop());

async function rawByType(): Promise<Map<string, { calls: number; tokens: number; below: number; above: number }>> {
  const r = await sql<{ action_type: string; calls: number; tokens: number; below: number; above: number }>`
    SELECT action_type, count(*)::bigint AS calls, sum(tokens_used)::bigint AS tokens,
      count(*) FILTER (WHERE action_type = 'assessment_scoring' AND tokens_used < 200)::bigint AS below,
      count(*) FILTER (WHERE action_type = 'assessment_scoring' AND tokens_used > 500)::bigint AS above
    FROM token_usage WHERE created_at >= '2025-02-28T18:30:00Z' AND created_at < '2025-03-31T18:30:00Z' GROUP BY 1`.execute(t.db);
  return new Map(r.rows.map((x) => [x.action_type, x]));
}

describe("usage analytics pages", () => {
  it("action types show exact calls, tokens and out-of-range counts for a Kolkata month", async () => {
    const data = await call(actionTypesLoader, `/action-types?${RANGE}`);
    const raw = await rawByType();
    for (const row of data.rows.filter((r: { calls: number }) => r.calls > 0)) {
      expect(row.calls).toBe(raw.get(row.action_type)?.calls);
      expect(row.tokens).toBe(raw.get(row.action_type)?.tokens);
    }
    const scoring = data.rows.find((r: { action_type: string }) => r.action_type === "assessment_scoring");
    expect(scoring.below_range).toBe(raw.get("assessment_scoring")?.below);
    expect(scoring.above_range).toBe(raw.get("assessment_scoring")?.above);
    expect(scoring.p50).toBeGreaterThan(0);
    expect(data.rows.some((r: { action_type: string }) => r.action_type === "frequency_flip")).toBe(true);
  });

  it("action types are sorted on the server by the column in the URL", async () => {
    const data = await call(actionTypesLoader, `/action-types?${RANGE}&sort=calls&dir=asc`);
    const calls = data.rows.map((r: { calls: number }) => r.calls);
    expect(calls).toEqual([...calls].sort((a, b) => a - b));
    await expect(call(actionTypesLoader, `/action-types?${RANGE}&sort=nope`)).rejects.toMatchObject({ init: { status: 400 } });
  });

  it("one action type lists routes with the unlisted one flagged, and top users", async () => {
    const data = await call(actionTypeLoader, `/action-types/chat_conversation?${RANGE}`, { name: "chat_conversation" });
    expect(data.routes.find((r: { key: string }) => r.key === "/api/transcribe")?.listed).toBe(false);
    expect(data.routes.find((r: { key: string }) => r.key === "/api/viva/chat")?.listed).toBe(true);
    expect(data.users.length).toBeGreaterThan(0);
    expect(data.histogram.reduce((s: number, b: { calls: number }) => s + b.calls, 0)).toBe(data.summary.calls);
  });

  it("an unknown action type is a 404", async () => {
    await expect(call(actionTypeLoader, `/action-types/no_such_type?${RANGE}`, { name: "no_such_type" })).rejects.toMatchObject({ init: { status: 404 } });
  });

  it("routes flag a type the registry does not list for that route", async () => {
    const data = await call(routesLoader, `/routes?${RANGE}&flagged=1`);
    expect(data.rows.some((r: { route: string; action_type: string }) => r.route === "/api/transcribe" && r.action_type === "chat_conversation")).toBe(true);
    expect(data.rows.every((r: { unexpected: boolean }) => r.unexpected)).toBe(true);
  });

  it("users are found by email prefix, any case, and by an id seen only in usage", async () => {
    expect((await call(usersLoader, `/users?${RANGE}&q=ada.LOVE`)).matches.map((m: { user_id: string }) => m.user_id)).toEqual([TEST_USERS[3]]);
    expect((await call(usersLoader, `/users?${RANGE}&q=${TEST_USERS[5]}`)).matches).toHaveLength(1);
    expect((await call(usersLoader, `/users?${RANGE}&q=nobody%25`)).matches).toEqual([]);
  });

  it("top users by cost are ordered by cost and paginated with the active-user total", async () => {
    const data = await call(usersLoader, `/users?${RANGE}&sort=cost_cents`);
    const costs = data.top.map((u: { cost_cents: number }) => u.cost_cents);
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
    expect(data.page.total).toBe(TEST_USERS.length);
  });

  it("the drill-down walks every row of a filter with keyset pages and no duplicates", async () => {
    const seen = new Set<string>();
    let url = `/usage?${RANGE}&type=chat_conversation`;
    for (let i = 0; i < 50; i++) {
      const data = await call(usageLoader, url);
      for (const r of data.rows) seen.add(r.id);
      if (!data.next) break;
      url = `/usage?${RANGE}&type=chat_conversation&cursor=${data.next}`;
    }
    const raw = await rawByType();
    expect(seen.size).toBe(raw.get("chat_conversation")?.calls);
  });

  it("the drill-down refuses a bad user id naming the field", async () => {
    await expect(call(usageLoader, `/usage?${RANGE}&user=bob`)).rejects.toMatchObject({ data: { message: expect.stringContaining("user") }, init: { status: 400 } });
    await expect(call(usageLoader, `/usage?${RANGE}&cursor=zzz`)).rejects.toMatchObject({ init: { status: 400 } });
  });
});
