import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import { INGEST_KEY, LEDGER_KEY, withE2eDatabase } from "./support";

/**
 * POST /api/v1/usage through the real server (Express, security middleware, Remix): the body
 * reaches the route unread, answers keep their shape, and stored rows are what was sent.
 */
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

function event(overrides: Record<string, unknown> = {}) {
  return {
    user_id: randomUUID(),
    action_type: "prompt_suggestions",
    model_used: "gpt-4o-mini",
    tokens_used: 1_500,
    route: "/api/viva/prompt-suggestions",
    created_at: new Date().toISOString(),
    event_id: `e2e-${randomUUID()}`,
    ...overrides,
  };
}

test("a batch posted with the ingest key is stored once, and its retry counts as duplicates", async ({ request }) => {
  const events = [event(), event({ tokens_used: 1_999 })];
  const first = await request.post("/api/v1/usage", { headers: auth(INGEST_KEY), data: { events } });
  expect(first.status()).toBe(200);
  expect(await first.json()).toEqual({ accepted: 2, duplicates: 0, errors: [] });

  const retry = await request.post("/api/v1/usage", { headers: auth(INGEST_KEY), data: { events } });
  expect(await retry.json()).toEqual({ accepted: 0, duplicates: 2, errors: [] });

  const stored = await withE2eDatabase(async (client) => {
    const result = await client.query<{ event_id: string; tokens_used: number }>(
      "SELECT event_id, tokens_used FROM token_usage WHERE event_id = ANY($1) ORDER BY tokens_used",
      [events.map((e) => e.event_id)],
    );
    return result.rows;
  });
  expect(stored).toEqual(events.map((e) => ({ event_id: e.event_id, tokens_used: e.tokens_used })));
});

test("an invalid batch answers 422 naming index and field, and stores nothing", async ({ request }) => {
  const good = event();
  const response = await request.post("/api/v1/usage", { headers: auth(INGEST_KEY), data: { events: [good, event({ tokens_used: -1 })] } });
  expect(response.status()).toBe(422);
  const body = (await response.json()) as { errors: { index: number; message: string }[] };
  expect(body.errors).toEqual([{ index: 1, message: "events[1].tokens_used: must be an integer ≥ 0" }]);
  const count = await withE2eDatabase(async (client) => (await client.query("SELECT 1 FROM token_usage WHERE event_id = $1", [good.event_id])).rowCount);
  expect(count).toBe(0);
});

test("keys are checked and scoped; wrong methods, types and sizes are refused", async ({ request }) => {
  const data = { events: [event()] };
  expect((await request.post("/api/v1/usage", { data })).status()).toBe(401);
  expect((await request.post("/api/v1/usage", { headers: auth(LEDGER_KEY), data })).status()).toBe(403);
  expect((await request.get("/api/v1/usage", { headers: auth(INGEST_KEY) })).status()).toBe(405);
  const text = await request.post("/api/v1/usage", { headers: { ...auth(INGEST_KEY), "content-type": "text/csv" }, data: "a,b\n" });
  expect(text.status()).toBe(415);
  const huge = await request.post("/api/v1/usage", {
    headers: { ...auth(INGEST_KEY), "content-type": "application/json" },
    data: JSON.stringify({ events: [event({ metadata: { blob: "x".repeat(3 * 1024 * 1024) } })] }),
  });
  expect(huge.status()).toBe(413);
  expect(await huge.json()).toMatchObject({ accepted: 0, duplicates: 0, errors: [] });
});
