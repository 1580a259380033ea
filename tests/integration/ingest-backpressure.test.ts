import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerApiKey } from "../../app/lib/auth.server";
import { INGEST_QUEUE_LIMIT } from "../../app/models/usage-ingest.server";
import { action } from "../../app/routes/api.v1.usage/route";
import { action as otlpAction } from "../../app/routes/api.otlp.v1.traces/route";
import { createTokenboardClient } from "../../client/track-token-usage";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

const INGEST_KEY = "test-ingest-key-backpressure-0123";
/** Longer than the route's probe interval (250 ms), so the next request sees the queue as it is now. */
const NEXT_PROBE = () => new Promise((resolve) => setTimeout(resolve, 300));

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await registerApiKey(t.db, "test ingest", "ingest", INGEST_KEY);
  // The route reads the queue's size from its statistics, which this test sets precisely. An
  // autovacuum ANALYZE of the queue (due after 100,000 inserts, at a moment of its own choosing)
  // overwrites the live-row count with its sample's, taken before the deletes that follow — the
  // likely cause of one fresh-clone CI run that still saw the queue "over the bound" after the
  // deletes had brought it under (2026-11-30; not reproduced on purpose).
  await sql`ALTER TABLE tokenboard.usage_rollup_queue SET (autovacuum_enabled = false)`.execute(t.db);
});
afterAll(async () => t.drop());

function event() {
  return { user_id: randomUUID(), action_type: "chat_conversation" as const, model_used: "gpt-4o", tokens_used: 3_000, event_id: randomUUID() };
}

function post(events: unknown[]): Request {
  return new Request("http://localhost/api/v1/usage", {
    method: "POST",
    body: JSON.stringify({ events }),
    headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" },
  });
}

async function send(events: unknown[]) {
  const response = (await action({ request: post(events), params: {}, context: {} })) as Response;
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as Record<string, unknown> };
}

/**
 * The route reads the queue's size and progress from PostgreSQL's statistics, which a backend
 * reports when it goes idle (at most once a second unless forced): force it, as time would.
 */
async function reported(statement: ReturnType<typeof sql>): Promise<void> {
  await t.db.connection().execute(async (connection) => {
    await statement.execute(connection);
    await sql`SELECT pg_stat_force_next_flush()`.execute(connection);
  });
}

/** Queue rows as the token_usage trigger writes them (the backlog a busy ingest leaves the rollup job). */
async function enqueue(rows: number): Promise<void> {
  await reported(sql`
    INSERT INTO tokenboard.usage_rollup_queue (sign, created_at, user_id, action_type, model_used, success, tokens_used, cost_cents)
    SELECT 1, now(), gen_random_uuid(), 'chat_conversation', 'gpt-4o', true, 1, 0 FROM generate_series(1, ${rows}::int)`);
}

/** What the rollup job does to the queue: remove rows from its head. */
async function consume(rows: number): Promise<void> {
  await reported(sql`DELETE FROM tokenboard.usage_rollup_queue WHERE id IN (SELECT id FROM tokenboard.usage_rollup_queue ORDER BY id LIMIT ${rows}::int)`);
}

async function stored(events: { event_id: string }[]): Promise<number> {
  const row = await t.db
    .selectFrom("token_usage")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("event_id", "in", events.map((e) => e.event_id))
    .executeTakeFirstOrThrow();
  return row.n;
}

describe("POST /api/v1/usage backpressure", () => {
  it("answers 503 + Retry-After while a consumed queue is over its bound, stores nothing, and accepts again below it", async () => {
    await enqueue(INGEST_QUEUE_LIMIT + 5_000);

    // Over the bound but nobody consumes the queue (jobs off): refusing would never end.
    const idle = [event()];
    expect((await send(idle)).status).toBe(200);

    // A rollup job consumes the queue: over the bound, ingest waits for it.
    await consume(1_000);
    await NEXT_PROBE();
    const refused = [event(), event()];
    const answer = await send(refused);
    expect(answer.status).toBe(503);
    expect(answer.retryAfter).toBe("1");
    expect(answer.body).toEqual({ accepted: 0, duplicates: 0, errors: [], message: expect.stringMatching(/nothing was stored/) });
    expect(await stored(refused)).toBe(0);

    // Below the bound again: accepted.
    await consume(10_000);
    await NEXT_PROBE();
    expect((await send(refused)).body).toEqual({ accepted: 2, duplicates: 0, errors: [] });
    expect(await stored(refused)).toBe(2);
    await consume(INGEST_QUEUE_LIMIT);
  });

  it("the client retries a 503 after Retry-After and the batch is stored once", async () => {
    await enqueue(INGEST_QUEUE_LIMIT + 5_000);
    await send([event()]); // first look at the queue
    await consume(1_000);
    await NEXT_PROBE();
    const statuses: number[] = [];
    const waits: number[] = [];
    const client = createTokenboardClient({
      baseUrl: "http://localhost",
      ingestKey: INGEST_KEY,
      fetch: async (input, init) => {
        const response = (await action({ request: new Request(input as string, init), params: {}, context: {} })) as Response;
        statuses.push(response.status);
        return response;
      },
      // The rollup job catches up while the client waits.
      sleep: async (ms) => {
        waits.push(ms);
        await consume(10_000);
        await NEXT_PROBE();
      },
    });
    const batch = Array.from({ length: 50 }, event);
    expect(await client.trackTokenUsage(batch)).toEqual({ accepted: 50, duplicates: 0, errors: [] });
    expect(statuses[0]).toBe(503);
    expect(statuses.at(-1)).toBe(200);
    expect(waits[0]).toBe(1_000);
    expect(await stored(batch)).toBe(50);
  });

  it("refuses OTLP exports with 503 + Retry-After under the same bound, and stores them once it is passed", async () => {
    await enqueue(INGEST_QUEUE_LIMIT + 5_000);
    await send([event()]); // first look at the queue
    await consume(1_000);
    await NEXT_PROBE();
    const traceId = randomUUID().replaceAll("-", "");
    const spanId = traceId.slice(0, 16);
    const attribute = (key: string, value: object) => ({ key, value });
    const attributes = [
      attribute("gen_ai.operation.name", { stringValue: "chat" }),
      attribute("gen_ai.request.model", { stringValue: "gpt-4o" }),
      attribute("gen_ai.usage.input_tokens", { intValue: "10" }),
      attribute("gen_ai.usage.output_tokens", { intValue: 5 }),
      attribute("enduser.id", { stringValue: randomUUID() }),
    ];
    const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId, name: "chat", startTimeUnixNano: "1767225600000000000", attributes }] }] }] });
    const headers = { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" };
    const exportSpans = async () =>
      (await otlpAction({ request: new Request("http://localhost/api/otlp/v1/traces", { method: "POST", body, headers }), params: {}, context: {} })) as Response;
    const refused = await exportSpans();
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await refused.json()).toEqual({ code: 14, message: expect.stringMatching(/nothing was stored/) });
    const eventIds = [{ event_id: `otlp:${traceId}:${spanId}` }];
    expect(await stored(eventIds)).toBe(0);

    // Everything queued so far, earlier tests' rows too.
    await consume(3 * INGEST_QUEUE_LIMIT);
    await NEXT_PROBE();
    expect((await exportSpans()).status).toBe(200);
    expect(await stored(eventIds)).toBe(1);
  });
});
