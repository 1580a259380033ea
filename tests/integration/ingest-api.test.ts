import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb } from "../../db/database";
import { ACTION_TYPES, ACTION_TYPE_NAMES } from "../../app/domain/action-types";
import { registerApiKey } from "../../app/lib/auth.server";
import { syncActionTypeConstraint } from "../../app/models/action-type-sync.server";
import { action, loader, MAX_BODY_BYTES } from "../../app/routes/api.v1.usage/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { UUID_V7, uuidV7Millis } from "../support/uuid";

const INGEST_KEY = "test-ingest-key-0123456789abcdef";
const LEDGER_KEY = "test-ledger-key-0123456789abcdef";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await registerApiKey(t.db, "test ingest", "ingest", INGEST_KEY);
  await registerApiKey(t.db, "test ledger", "ledger", LEDGER_KEY);
});
afterAll(async () => t.drop());

interface Answer {
  accepted: number;
  duplicates: number;
  errors: { index: number; message: string }[];
  message?: string;
}

function post(body: string, headers: Record<string, string> = {}): Request {
  return new Request("http://localhost/api/v1/usage", {
    method: "POST",
    body,
    headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json", ...headers },
  });
}

async function send(request: Request): Promise<{ status: number; body: Answer; response: Response }> {
  const response = (await action({ request, params: {}, context: {} })) as Response;
  return { status: response.status, body: (await response.json()) as Answer, response };
}

const sendEvents = (events: unknown[], headers?: Record<string, string>) => send(post(JSON.stringify({ events }), headers));

function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user_id: randomUUID(),
    action_type: "chat_conversation",
    model_used: "gpt-4o",
    tokens_used: 3_000,
    input_tokens: 2_000,
    output_tokens: 1_000,
    created_at: "2025-03-01T10:00:00Z",
    event_id: randomUUID(),
    ...overrides,
  };
}

async function rowsWithEventIds(ids: unknown[]): Promise<number> {
  const rows = await t.db
    .selectFrom("token_usage")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("event_id", "in", ids as string[])
    .executeTakeFirstOrThrow();
  return rows.n;
}

async function totalRows(): Promise<number> {
  const row = await t.db.selectFrom("token_usage").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  return row.n;
}

describe("POST /api/v1/usage access", () => {
  it("answers 401 without credentials and with an unknown key", async () => {
    const anonymous = new Request("http://localhost/api/v1/usage", { method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    const none = await send(anonymous);
    expect(none.status).toBe(401);
    expect(none.response.headers.get("www-authenticate")).toBe("Bearer");
    expect(none.body).toMatchObject({ accepted: 0, duplicates: 0, errors: [] });
    expect((await sendEvents([event()], { authorization: "Bearer not-a-real-key-000000" })).status).toBe(401);
  });

  it("refuses the ledger key with 403, because keys are scoped", async () => {
    const before = await totalRows();
    const { status, body } = await sendEvents([event()], { authorization: `Bearer ${LEDGER_KEY}` });
    expect(status).toBe(403);
    expect(body.message).toMatch(/ledger/);
    expect(await totalRows()).toBe(before);
  });

  it("answers 405 to GET with Allow: POST", async () => {
    const response = loader();
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("POST");
  });

  it("answers 415 when the content type is not JSON", async () => {
    const { status, body } = await send(post(JSON.stringify({ events: [event()] }), { "content-type": "text/plain" }));
    expect(status).toBe(415);
    expect(body.message).toMatch(/application\/json/);
  });

  it("answers 413 for a body over the limit, also when no length is declared", async () => {
    const huge = JSON.stringify({ events: [event({ metadata: { blob: "x".repeat(MAX_BODY_BYTES) } })] });
    const streamed = await send(post(huge));
    expect(streamed.status).toBe(413);
    const declared = await send(post("{}", { "content-length": String(MAX_BODY_BYTES + 1) }));
    expect(declared.status).toBe(413);
    expect(declared.body).toMatchObject({ accepted: 0, duplicates: 0, errors: [] });
  });
});

describe("POST /api/v1/usage malformed bodies (400)", () => {
  it.each([
    ["not JSON", "{events:", /not valid JSON/],
    ["an array body", "[]", /JSON object/],
    ["no events", "{}", /events: is required/],
    ["events not an array", '{"events":{}}', /events: must be an array/],
    ["an empty batch", '{"events":[]}', /1 to 1000 events, got 0/],
    ["an unknown top-level field", '{"events":[],"extra":1}', /extra: unknown field/],
  ])("refuses %s with a message", async (_name, body, message) => {
    const answer = await send(post(body));
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ accepted: 0, duplicates: 0, errors: [] });
    expect(answer.body.message).toMatch(message);
  });

  it("refuses a batch of 1001 events", async () => {
    const { status, body } = await sendEvents(Array.from({ length: 1001 }, () => event()));
    expect(status).toBe(400);
    expect(body.message).toMatch(/got 1001/);
  });
});

describe("POST /api/v1/usage validation (422, all-or-nothing)", () => {
  it("names the field and index of each error and stores nothing of a mixed batch", async () => {
    const good = [event(), event(), event()];
    const bad = [
      event({ tokens_used: -5 }),
      event({ user_id: "not-a-uuid", surprise: true }),
      event({ created_at: new Date(Date.now() + 3 * 86_400_000).toISOString() }),
    ];
    const batch = [good[0], bad[0], good[1], bad[1], good[2], bad[2]];
    const { status, body } = await sendEvents(batch);
    expect(status).toBe(422);
    expect(body.accepted).toBe(0);
    expect(body.errors).toEqual([
      { index: 1, message: "events[1].tokens_used: must be an integer ≥ 0" },
      { index: 3, message: expect.stringMatching(/^events\[3\]\.surprise: unknown field/) },
      { index: 3, message: "events[3].user_id: must be a UUID" },
      { index: 5, message: "events[5].created_at: is more than 1 day in the future" },
    ]);
    expect(await rowsWithEventIds(batch.map((e) => e!.event_id))).toBe(0);
  });

  it("lists the allowed action types when the type is unknown", async () => {
    const { status, body } = await sendEvents([event({ action_type: "vibrational_analysis" })]);
    expect(status).toBe(422);
    const message = body.errors[0]?.message ?? "";
    expect(message).toMatch(/^events\[0\]\.action_type: unknown action type "vibrational_analysis"; allowed: /);
    for (const name of ACTION_TYPE_NAMES) expect(message).toContain(name);
  });

  it("refuses a client-chosen id and text PostgreSQL cannot store, naming the field", async () => {
    const { status, body } = await sendEvents([event({ id: randomUUID(), error_message: "bad\u0000byte" })]);
    expect(status).toBe(422);
    expect(body.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^events\[0\]\.id: unknown field: tokenboard assigns ids/),
      "events[0].error_message: must not contain NUL characters or invalid Unicode",
    ]);
  });
});

describe("POST /api/v1/usage storing", () => {
  it("gives stored rows UUIDv7 ids that sort in the order the events were stored", async () => {
    const before = Date.now();
    const first = [event(), event(), event()];
    const second = [event(), event()];
    expect((await sendEvents(first)).status).toBe(200);
    expect((await sendEvents(second)).status).toBe(200);
    const after = Date.now();
    const sent = [...first, ...second].map((e) => e.event_id as string);
    const rows = await t.db.selectFrom("token_usage").select(["id", "event_id"]).where("event_id", "in", sent).orderBy("id").execute();
    // Ordered by id, the rows come back as they were sent: the primary key takes them at its right edge.
    expect(rows.map((r) => r.event_id)).toEqual(sent);
    for (const { id } of rows) {
      expect(id).toMatch(UUID_V7);
      const ms = uuidV7Millis(id);
      expect(ms).toBeGreaterThanOrEqual(before);
      expect(ms).toBeLessThanOrEqual(after);
    }
  });

  it("stores a valid batch exactly as sent, with defaults for the fields left out", async () => {
    // Fields that come back from the database exactly as sent.
    const roundTrip = {
      action_type: "audio_generation",
      model_used: "tts-1",
      tokens_used: 42,
      success: false,
      error_message: "upstream timeout",
      metadata: { voice: "alloy", nested: { a: [1, 2] } },
      calculated_cost_cents: 1.2345,
      audio_seconds: 12.5,
      audio_duration_formatted: "0:12",
      openai_request_id: "req_123",
      openai_created: 1_740_000_000,
      system_fingerprint: "fp_1",
      actual_cost_cents: 1.3,
      reconciliation_status: "matched",
      route: "/lib/services/audioService.ts",
    };
    const full = event({ ...roundTrip, created_at: "2025-03-01T12:30:00.250+02:00", reconciled_at: "2025-03-02T00:00:00Z" });
    const minimal = { user_id: randomUUID(), action_type: "image_generation", model_used: "dall-e-3", tokens_used: 25, event_id: randomUUID() };
    const { status, body } = await sendEvents([full, minimal]);
    expect(status).toBe(200);
    expect(body).toEqual({ accepted: 2, duplicates: 0, errors: [] });

    const stored = await t.db.selectFrom("token_usage").selectAll().where("event_id", "=", full.event_id as string).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ ...roundTrip, user_id: full.user_id, input_tokens: 2_000, output_tokens: 1_000 });
    expect(stored.created_at.toISOString()).toBe("2025-03-01T10:30:00.250Z");
    expect(stored.reconciled_at?.toISOString()).toBe("2025-03-02T00:00:00.000Z");

    const defaults = await t.db.selectFrom("token_usage").selectAll().where("event_id", "=", minimal.event_id).executeTakeFirstOrThrow();
    expect(defaults).toMatchObject({ input_tokens: 0, output_tokens: 0, success: true, metadata: {}, reconciliation_status: "pending", route: null });
    expect(Math.abs(defaults.created_at.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it("stores text and metadata exactly as sent, whatever characters they hold", async () => {
    // Each column travels as a PostgreSQL array literal: quotes, backslashes, braces, commas,
    // the word NULL and any Unicode must come back as sent.
    const awkward = fc.constantFrom("NULL", "null", "", " ", "{}", '{"a","b"}', "\\", '"', "a,b", "{NULL}", "line\nbreak", "tab\there", "😀 ünïcödé");
    const text = fc.oneof(awkward, fc.string({ unit: "grapheme", maxLength: 30 }).filter((value) => !value.includes("\u0000")));
    const metadata = fc.dictionary(text, fc.oneof(text, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)), { maxKeys: 4 });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ error_message: text, route: text, system_fingerprint: text, metadata }), { minLength: 1, maxLength: 4 }), async (items) => {
        const events = items.map((item) => event(item));
        const { status, body } = await sendEvents(events);
        expect(status, JSON.stringify(body)).toBe(200);
        const stored = await t.db
          .selectFrom("token_usage")
          .select(["event_id", "error_message", "route", "system_fingerprint", "metadata"])
          .where("event_id", "in", events.map((e) => e.event_id as string))
          .execute();
        const byId = new Map(stored.map((row) => [row.event_id, row]));
        for (const sent of events) {
          expect(byId.get(sent.event_id as string)).toEqual({
            event_id: sent.event_id,
            error_message: sent.error_message,
            route: sent.route,
            system_fingerprint: sent.system_fingerprint,
            // jsonb keeps what JSON can say: -0 is 0 after the round trip through JSON text.
            metadata: JSON.parse(JSON.stringify(sent.metadata)),
          });
        }
      }),
      { numRuns: 60 },
    );
  });

  it("counts a retried batch as duplicates and stores no new rows", async () => {
    const batch = [event(), event(), event()];
    expect((await sendEvents(batch)).body).toEqual({ accepted: 3, duplicates: 0, errors: [] });
    const before = await totalRows();
    expect((await sendEvents(batch)).body).toEqual({ accepted: 0, duplicates: 3, errors: [] });
    expect(await totalRows()).toBe(before);
  });

  it("stores an event_id repeated within one batch once", async () => {
    const first = event();
    const again = { ...first, tokens_used: 9_999 };
    const { body } = await sendEvents([first, again, event()]);
    expect(body).toEqual({ accepted: 2, duplicates: 1, errors: [] });
    const row = await t.db.selectFrom("token_usage").select("tokens_used").where("event_id", "=", first.event_id as string).executeTakeFirstOrThrow();
    expect(row.tokens_used).toBe(3_000);
  });

  it("stores events without event_id every time they are sent", async () => {
    const anonymous = event({ event_id: undefined, user_id: randomUUID() });
    await sendEvents([anonymous]);
    await sendEvents([anonymous]);
    const rows = await t.db.selectFrom("token_usage").select("id").where("user_id", "=", anonymous.user_id as string).execute();
    expect(rows).toHaveLength(2);
  });

  it("accepts every registered action type", async () => {
    const batch = ACTION_TYPES.map((type) => event({ action_type: type.name, tokens_used: type.expectedRange?.min ?? 100 }));
    const { status, body } = await sendEvents(batch);
    expect(status).toBe(200);
    expect(body.accepted).toBe(ACTION_TYPES.length);
  });

  it("stores each event once when two identical batches race", async () => {
    const batch = Array.from({ length: 200 }, () => event());
    const [a, b] = await Promise.all([sendEvents(batch), sendEvents(batch)]);
    expect(a!.body.accepted + b!.body.accepted).toBe(200);
    expect(a!.body.duplicates + b!.body.duplicates).toBe(200);
    expect(await rowsWithEventIds(batch.map((e) => e.event_id))).toBe(200);
  });
});

describe("POST /api/v1/usage on arbitrary input", () => {
  // Mostly any Unicode, sometimes any UTF-16 code unit (lone surrogates, NUL): what a broken client may send.
  const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
  const anyText = fc.string({ unit: fc.oneof({ weight: 20, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: codeUnit }), maxLength: 30 });
  const either = <T,>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 30, arbitrary: valid }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
  const randomEvent = fc.record(
    {
      user_id: either(fc.uuid()),
      action_type: either(fc.constantFrom(...ACTION_TYPE_NAMES)),
      model_used: either(anyText),
      tokens_used: either(fc.integer({ min: -10, max: 2 ** 31 })),
      input_tokens: either(fc.option(fc.nat())),
      success: either(fc.boolean()),
      error_message: either(fc.option(anyText)),
      metadata: either(fc.dictionary(anyText, fc.oneof(anyText, fc.double(), fc.jsonValue({ maxDepth: 1 })), { maxKeys: 3 })),
      created_at: either(fc.date({ min: new Date("2000-01-01"), max: new Date("2025-01-01"), noInvalidDate: true }).map((d) => d.toISOString())),
      calculated_cost_cents: either(fc.option(fc.double({ min: 0, max: 99_999_999, noNaN: true }))),
      openai_created: either(fc.option(fc.maxSafeNat())),
      route: either(fc.option(anyText)),
      event_id: either(fc.string({ minLength: 0, maxLength: 5 })),
    },
    { requiredKeys: ["user_id", "action_type", "model_used", "tokens_used"] },
  );

  it("stores a batch or refuses it with field errors, never a server error", async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.array(randomEvent, { minLength: 1, maxLength: 6 }), async (events) => {
        const before = await totalRows();
        const { status, body } = await sendEvents(events);
        statuses.add(status);
        expect([200, 422]).toContain(status);
        if (status === 200) {
          expect(body.accepted + body.duplicates).toBe(events.length);
          expect(await totalRows()).toBe(before + body.accepted);
        } else {
          expect(body.errors.length).toBeGreaterThan(0);
          for (const error of body.errors) expect(error.message).toMatch(/^events\[\d+\]\.?[a-z_]*: /);
          expect(await totalRows()).toBe(before);
        }
      }),
      { numRuns: 150 },
    );
    // Both outcomes were exercised, so the property says something about each.
    expect([...statuses].sort()).toEqual([200, 422]);
  });
});

describe("POST /api/v1/usage when the database constraint lags the registry", () => {
  it("answers 500 telling the operator to migrate, stores nothing, and leaks no SQL", async () => {
    const allowed = ACTION_TYPE_NAMES.filter((n) => n !== "frequency_flip").map((n) => `'${n}'`).join(",");
    await sql.raw(`ALTER TABLE public.token_usage DROP CONSTRAINT token_usage_action_type_check`).execute(t.db);
    await sql.raw(`ALTER TABLE public.token_usage ADD CONSTRAINT token_usage_action_type_check CHECK (action_type = ANY (ARRAY[${allowed}])) NOT VALID`).execute(t.db);
    try {
      const batch = [event(), event({ action_type: "frequency_flip" })];
      const { status, body } = await sendEvents(batch);
      expect(status).toBe(500);
      expect(body.message).toMatch(/token_usage_action_type_check constraint .*npm run cli -- migrate/);
      expect(body.message).not.toMatch(/violates|INSERT/);
      expect(await rowsWithEventIds(batch.map((e) => e.event_id))).toBe(0);
    } finally {
      await syncActionTypeConstraint(t.db);
    }
  });
});

describe("POST /api/v1/usage when the database is down", () => {
  it("answers 503 with Retry-After and a JSON message, no stack trace", async () => {
    const saved = globalThis.__tokenboardDb;
    // Port 1 on loopback refuses connections at once.
    const unreachable = createDb("postgres://postgres:x@127.0.0.1:1/none", 1);
    globalThis.__tokenboardDb = unreachable;
    try {
      const { status, body, response } = await sendEvents([event()]);
      expect(status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("5");
      expect(body).toEqual({ accepted: 0, duplicates: 0, errors: [], message: expect.stringMatching(/^The database is not reachable right now/) });
    } finally {
      globalThis.__tokenboardDb = saved;
      await unreachable.db.destroy();
    }
    await sql`SELECT 1`.execute(t.db);
  });
});
