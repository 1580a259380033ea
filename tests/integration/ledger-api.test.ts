import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb } from "../../db/database";
import { registerApiKey } from "~/lib/auth.server";
import { action as ledgerAction } from "~/routes/api.v1.ledger/route";
import { loader as balanceLoader } from "~/routes/api.v1.balance/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

const LEDGER_KEY = "ledger-key-for-tests-0001";
const INGEST_KEY = "ingest-key-for-tests-0001";

let t: TestDatabase;
let support: TestStaff;
let analyst: TestStaff;
beforeAll(async () => {
  t = await createTestDatabase();
  await registerApiKey(t.db, "ledger", "ledger", LEDGER_KEY);
  await registerApiKey(t.db, "ingest", "ingest", INGEST_KEY);
  support = await staffSession(t.db, "support");
  analyst = await staffSession(t.db, "analyst");
});
afterAll(async () => t.drop());

function post(body: unknown, auth: { key?: string; staff?: TestStaff } = { key: LEDGER_KEY }) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth.key) headers.authorization = `Bearer ${auth.key}`;
  const request = requestAs(auth.staff ?? null, "/api/v1/ledger", { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  return ledgerAction({ request, params: {}, context: {} }) as Promise<Response>;
}

function balance(userId: string, auth: { key?: string; staff?: TestStaff } = { key: LEDGER_KEY }) {
  const headers: Record<string, string> = auth.key ? { authorization: `Bearer ${auth.key}` } : {};
  const request = requestAs(auth.staff ?? null, `/api/v1/users/${userId}/balance`, { headers });
  return balanceLoader({ request, params: { userId }, context: {} }) as Promise<Response>;
}

const body = (userId: string, extra: Record<string, unknown> = {}) => ({ user_id: userId, amount: 250, kind: "grant", reason: "support ticket 42", idempotency_key: `k-${randomUUID()}`, ...extra });

describe("POST /api/v1/ledger", () => {
  it("answers the new balance and a repeated key answers the first result", async () => {
    const user = randomUUID();
    const request = body(user);
    const first = await post(request);
    expect(first.status).toBe(201);
    const firstJson = await first.json();
    expect(firstJson).toMatchObject({ user_id: user, balance: 250, idempotent_replay: false });
    await post(body(user, { amount: 10 }));
    const again = await post(request);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ ...firstJson, idempotent_replay: true });
    expect(await (await balance(user)).json()).toEqual({ user_id: user, balance: 260 });
  });

  it("answers 409 with a clear message when the balance is too low", async () => {
    const user = randomUUID();
    const response = await post(body(user, { kind: "deduct", amount: 5 }));
    expect(response.status).toBe(409);
    expect((await response.json()).error).toMatch(/Insufficient balance/);
  });

  it("names the wrong field and changes nothing", async () => {
    const user = randomUUID();
    const response = await post(body(user, { amount: 0 }));
    expect(response.status).toBe(422);
    const json = await response.json();
    expect(json.errors).toHaveProperty("amount");
    expect(json.error).toMatch(/amount/);
    expect(await (await balance(user)).json()).toEqual({ user_id: user, balance: 0 });
  });

  it("answers 400 for a body that is not JSON", async () => {
    expect((await post("{not json")).status).toBe(400);
  });

  it("refuses the ingest key, a wrong key and no credentials", async () => {
    expect((await post(body(randomUUID()), { key: INGEST_KEY })).status).toBe(403);
    expect((await post(body(randomUUID()), { key: "wrong-key-wrong-key-123" })).status).toBe(401);
    expect((await post(body(randomUUID()), {})).status).toBe(401);
  });

  it("caps support staff per adjustment and refuses analysts", async () => {
    const over = await post(body(randomUUID(), { amount: 10_001 }), { staff: support });
    expect(over.status).toBe(403);
    expect((await over.json()).error).toMatch(/Ask an admin/);
    expect((await post(body(randomUUID(), { amount: 10_000 }), { staff: support })).status).toBe(201);
    expect((await post(body(randomUUID()), { staff: analyst })).status).toBe(403);
  });
});

describe("when the database is down", () => {
  it("answers 503 with Retry-After and no internals", async () => {
    const live = globalThis.__tokenboardDb;
    globalThis.__tokenboardDb = createDb("postgres://postgres:x@127.0.0.1:1/none", 1);
    try {
      const response = await post(body(randomUUID()));
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("5");
      expect(JSON.stringify(await response.json())).not.toMatch(/ECONNREFUSED|127\.0\.0\.1/);
    } finally {
      await globalThis.__tokenboardDb?.db.destroy();
      globalThis.__tokenboardDb = live;
    }
  });
});

describe("GET /api/v1/users/:id/balance", () => {
  it("answers 0 for a user the ledger has never seen", async () => {
    const user = randomUUID();
    expect(await (await balance(user)).json()).toEqual({ user_id: user, balance: 0 });
  });

  it("answers 400 naming user_id for an invalid uuid", async () => {
    const response = await balance("not-a-uuid");
    expect(response.status).toBe(400);
    expect((await response.json()).errors).toHaveProperty("user_id");
  });

  it("does not accept the ingest key", async () => {
    expect((await balance(randomUUID(), { key: INGEST_KEY })).status).toBe(403);
  });

  it("lets support read with a session and refuses analysts", async () => {
    expect((await balance(randomUUID(), { staff: support })).status).toBe(200);
    expect((await balance(randomUUID(), { staff: analyst })).status).toBe(403);
  });
});
