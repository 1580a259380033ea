import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

/**
 * Property: whatever a URL carries, a page answers with its data, a redirect or a 4xx that says
 * what is wrong — never a 500, never SQL or a stack trace.
 */
type Loader = (args: { request: Request; params: Record<string, string>; context: object }) => Promise<unknown>;

const PAGES: { path: string; params?: Record<string, string>; load: () => Promise<{ loader: Loader }> }[] = [
  { path: "/", load: () => import("../../app/routes/overview/route") as Promise<{ loader: Loader }> },
  { path: "/action-types", load: () => import("../../app/routes/action-types/route") as Promise<{ loader: Loader }> },
  { path: "/action-types/chat_conversation", params: { name: "chat_conversation" }, load: () => import("../../app/routes/action-type/route") as Promise<{ loader: Loader }> },
  { path: "/routes", load: () => import("../../app/routes/routes/route") as Promise<{ loader: Loader }> },
  { path: "/users", load: () => import("../../app/routes/users/route") as Promise<{ loader: Loader }> },
  { path: "/users/00000000-0000-4000-8000-000000000001", params: { userId: "00000000-0000-4000-8000-000000000001" }, load: () => import("../../app/routes/user/route") as Promise<{ loader: Loader }> },
  { path: "/outliers", load: () => import("../../app/routes/outliers/route") as Promise<{ loader: Loader }> },
  { path: "/usage", load: () => import("../../app/routes/usage/route") as Promise<{ loader: Loader }> },
  { path: "/overrides", load: () => import("../../app/routes/overrides/route") as Promise<{ loader: Loader }> },
  { path: "/reports", load: () => import("../../app/routes/reports/route") as Promise<{ loader: Loader }> },
  { path: "/billing", load: () => import("../../app/routes/billing/route") as Promise<{ loader: Loader }> },
  { path: "/reports/balances.csv", load: () => import("../../app/routes/reports.balances/route") as Promise<{ loader: Loader }> },
  { path: "/audit", load: () => import("../../app/routes/audit/route") as Promise<{ loader: Loader }> },
  { path: "/staff", load: () => import("../../app/routes/staff/route") as Promise<{ loader: Loader }> },
];

const KEYS = ["from", "to", "tz", "type", "sort", "dir", "page", "cursor", "q", "rule", "status", "user", "userId", "route", "model", "success", "month", "actor", "action", "target", "view", "by", "edit", "ledgerPage", "x"];

const nasty = fc.constantFrom(
  "", " ", "0", "-1", "1e309", "99999999999999999999", "NaN", "2026-02-30", "2026-13-01", "1900-01-01", "9999-12-31",
  "Mars/Olympus", "UTC", "Asia/Kolkata", "Pacific/Chatham", "'; DROP TABLE token_usage; --", "%", "_", "\\", "\u0000", "a\u0000b",
  "../../etc/passwd", "<script>alert(1)</script>", "😀", "asc", "desc", "tokens", "calls", "chat_conversation", "vibrational_analysis",
  "00000000-0000-4000-8000-000000000001", "not-a-uuid", "2026-11", "2026-11-24", "eyJhIjoxfQ", "open", "acknowledged", "true", "false",
  // The security review's (issue 23): each answered 500.
  "0000-01-01", "0000-01", "9999-12", "9999-12-01", "2026-13-45", "9223372036854775808", "tab\there", "\u0001", "chat\u0000",
);
const value = fc.oneof(nasty, fc.string({ maxLength: 40 }), fc.integer().map(String), fc.string({ unit: "binary", maxLength: 12 }));
const query = fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 6 });

let t: TestDatabase;
let admin: TestStaff;
beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
  // Some usage in the last weeks, so pages exercise their real query paths.
  await sql`
    INSERT INTO public.token_usage (user_id, action_type, model_used, tokens_used, success, route, created_at)
    SELECT ('00000000-0000-4000-8000-' || lpad((g % 7)::text, 12, '0'))::uuid,
           (ARRAY['chat_conversation','image_generation','assessment_scoring'])[1 + g % 3], 'gpt-4o',
           (g * 97) % 6000, g % 13 <> 0, '/api/viva/chat', now() - (g || ' hours')::interval
    FROM generate_series(1, 500) AS g`.execute(t.db);
});
afterAll(async () => t.drop());

async function outcome(loader: Loader, url: string, params: Record<string, string>): Promise<{ status: number; body: string }> {
  try {
    const value = await loader({ request: requestAs(admin, url), params, context: {} });
    if (value instanceof Response) return { status: value.status, body: await value.clone().text() };
    const init = (value as { init?: { status?: number } } | null)?.init;
    return { status: init?.status ?? 200, body: JSON.stringify(value ?? null) };
  } catch (thrown) {
    if (thrown instanceof Response) return { status: thrown.status, body: await thrown.text() };
    const data = thrown as { type?: string; data?: unknown; init?: { status?: number } };
    if (data?.type === "DataWithResponseInit") return { status: data.init?.status ?? 500, body: JSON.stringify(data.data) };
    return { status: 500, body: thrown instanceof Error ? `${thrown.message}\n${thrown.stack}` : String(thrown) };
  }
}

describe("URL parameters never break a page", () => {
  for (const page of PAGES) {
    it(`${page.path} answers every URL without a 500 or leaked internals`, async () => {
      const { loader } = await page.load();
      await fc.assert(
        fc.asyncProperty(query, async (params) => {
          const url = `${page.path}?${new URLSearchParams(params).toString()}`;
          const { status, body } = await outcome(loader, url, page.params ?? {});
          expect({ url, status, body: status >= 500 ? body.slice(0, 500) : "" }).toMatchObject({ status: expect.any(Number) });
          expect(status, `${url} → ${status}: ${body.slice(0, 300)}`).toBeLessThan(500);
          expect(body).not.toMatch(/\bat [\w.<>]+ \(|node_modules|syntax error at|violates|relation "|SELECT .* FROM/i);
        }),
        { numRuns: 40, seed: 20261124 },
      );
    });
  }
});
