import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerApiKey } from "../../app/lib/auth.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

/**
 * The security review's payloads (issue 23, item 6): each answered 500, or no answer at all.
 * Every one must be a 4xx whose message names the field, and write nothing.
 */
type RouteFunction = (args: { request: Request; params: Record<string, string>; context: object }) => Promise<unknown>;

const INGEST_KEY = "bounds-ingest-key-0123456789abcdef";
const USER = "00000000-0000-4000-8000-0000000000b1";

let t: TestDatabase;
let admin: TestStaff;

beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
  await registerApiKey(t.db, "bounds ingest", "ingest", INGEST_KEY);
  await sql`INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, created_at) VALUES (${USER}, 'chat_conversation', 'gpt-4o', 3000, now() - interval '1 hour')`.execute(t.db);
});
afterAll(async () => t?.drop());

async function answer(run: () => Promise<unknown>): Promise<{ status: number; body: string }> {
  try {
    const value = await run();
    if (value instanceof Response) return { status: value.status, body: await value.text() };
    const v = value as { type?: string; data?: unknown; init?: { status?: number } } | null;
    if (v?.type === "DataWithResponseInit") return { status: v.init?.status ?? 200, body: JSON.stringify(v.data) };
    return { status: 200, body: JSON.stringify(value) };
  } catch (thrown) {
    if (thrown instanceof Response) return { status: thrown.status, body: await thrown.text() };
    const d = thrown as { type?: string; data?: unknown; init?: { status?: number } };
    if (d?.type === "DataWithResponseInit") return { status: d.init?.status ?? 500, body: JSON.stringify(d.data) };
    return { status: 500, body: String(thrown) };
  }
}

const load = async (module: Promise<{ loader: unknown }>, url: string, params: Record<string, string> = {}) => {
  const { loader } = await module;
  return answer(() => (loader as RouteFunction)({ request: requestAs(admin, url), params, context: {} }));
};

const PAGES = {
  overview: () => import("../../app/routes/overview/route"),
  usage: () => import("../../app/routes/usage/route"),
  users: () => import("../../app/routes/users/route"),
  audit: () => import("../../app/routes/audit/route"),
  outliers: () => import("../../app/routes/outliers/route"),
  reports: () => import("../../app/routes/reports/route"),
  export: () => import("../../app/routes/reports.export/route"),
  raw: () => import("../../app/routes/reports.raw/route"),
  user: () => import("../../app/routes/user/route"),
};

describe("NUL and control characters in filter parameters", () => {
  const cases: [keyof typeof PAGES, string, string][] = [
    ["overview", "/", "type"],
    ["usage", "/usage", "type"],
    ["usage", "/usage", "route"],
    ["usage", "/usage", "model"],
    ["users", "/users", "q"],
    ["audit", "/audit", "actor"],
    ["audit", "/audit", "action"],
    ["audit", "/audit", "target"],
    ["outliers", "/outliers", "type"],
    ["outliers", "/outliers", "route"],
  ];
  for (const [page, path, field] of cases) {
    it(`${path}?${field}=a%00b answers 400 naming ${field}`, async () => {
      const { status, body } = await load(PAGES[page](), `${path}?${field}=a%00b`);
      expect(status, body).toBe(400);
      expect(body).toMatch(new RegExp(`\\b${field}\\b.*control characters`));
    });
  }
});

describe("years and dates out of bounds", () => {
  const cases: [keyof typeof PAGES, string, string, Record<string, string>?][] = [
    ["overview", "/?from=0000-01-01&to=0000-01-31", "from"],
    ["overview", "/?from=9999-12-01&to=9999-12-31", "from"],
    ["usage", "/usage?to=9999-12-31", "to"],
    ["audit", "/audit?from=0000-01-01", "from"],
    ["user", `/users/${USER}?from=9999-12-01&to=9999-12-31`, "from", { userId: USER }],
    ["reports", "/reports?month=0000-01", "month"],
    ["reports", "/reports?month=9999-12", "month"],
    ["export", "/reports/export.csv?month=9999-12&tz=Pacific/Kiritimati", "month"],
    ["raw", "/reports/raw.csv?month=0000-01&tz=UTC", "month"],
  ];
  for (const [page, url, field, params] of cases) {
    it(`${url} answers 400 naming ${field}`, async () => {
      const { status, body } = await load(PAGES[page](), url, params);
      expect(status, body).toBe(400);
      expect(body).toMatch(new RegExp(`\\b${field}\\b.*year`));
    });
  }
});

describe("form values out of bounds", () => {
  const post = (path: string, values: Record<string, string>) => requestAs(admin, path, { method: "POST", body: new URLSearchParams(values) });

  it("expires_on=2026-13-45 is refused naming expires_on, and nothing is written", async () => {
    const { action } = await PAGES.user();
    const before = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_entries`.execute(t.db);
    const { status, body } = await answer(() =>
      (action as RouteFunction)({ request: post(`/users/${USER}`, { intent: "apply", kind: "grant", amount: "5", reason: "support ticket", idempotency_key: randomUUID(), expires_on: "2026-13-45" }), params: { userId: USER }, context: {} }),
    );
    expect(status, body).toBe(422);
    expect(body).toMatch(/expires_on.*not a real date/);
    const after = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_entries`.execute(t.db);
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
  });

  for (const id of ["9223372036854775808", "99999999999999999999999"]) {
    it(`an outlier flag id of ${id} is refused naming id`, async () => {
      const { action } = await PAGES.outliers();
      const { status, body } = await answer(() => (action as RouteFunction)({ request: post("/outliers", { intent: "acknowledge", id, note: "checked" }), params: {}, context: {} }));
      expect(status, body).toBe(400);
      expect(body).toMatch(/"id":".*at most 9223372036854775807/);
    });
  }
});

describe("usage metadata nested deeper than the bound", () => {
  it("metadata nested 5,000 deep is refused with 422 naming metadata, and nothing is stored", async () => {
    const { action } = await import("../../app/routes/api.v1.usage/route");
    const metadata = `${'{"a":'.repeat(5_000)}1${"}".repeat(5_000)}`;
    const body = `{"events":[{"user_id":"${USER}","action_type":"chat_conversation","model_used":"gpt-4o","tokens_used":10,"metadata":${metadata}}]}`;
    const request = new Request("http://localhost/api/v1/usage", { method: "POST", body, headers: { "content-type": "application/json", authorization: `Bearer ${INGEST_KEY}` } });
    const before = await sql<{ n: number }>`SELECT count(*)::int AS n FROM token_usage`.execute(t.db);
    const { status, body: text } = await answer(() => (action as RouteFunction)({ request, params: {}, context: {} }));
    expect(status, text).toBe(422);
    expect(text).toMatch(/metadata.*nested/);
    const after = await sql<{ n: number }>`SELECT count(*)::int AS n FROM token_usage`.execute(t.db);
    expect(after.rows[0]?.n).toBe(before.rows[0]?.n);
  });
});
