import { randomUUID } from "node:crypto";
import type { KyselyPlugin } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { configureApiRateLimits, registerApiKey } from "~/lib/auth.server";
import { action as ledgerAction } from "~/routes/api.v1.ledger/route";
import { loader as balanceLoader } from "~/routes/api.v1.balance/route";
import { action as usageAction } from "~/routes/api.v1.usage/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

/**
 * API keys as the routes see them (real database): scopes, revocation at once, rotation,
 * last use, rate limits, and the content type of cookie-authenticated calls.
 */
const LEDGER_KEY = "api-keys-test-ledger-key-0001";
const INGEST_KEY = "api-keys-test-ingest-key-0001";

let t: TestDatabase;
let admin: TestStaff;
/** Queries the app's database handle has run (the routes use it through getDb). */
let queries = 0;
const counter: KyselyPlugin = {
  transformQuery: (args) => {
    queries += 1;
    return args.node;
  },
  transformResult: async (args) => args.result,
};

beforeAll(async () => {
  t = await createTestDatabase();
  globalThis.__tokenboardDb = { db: t.db.withPlugin(counter), pool: t.pool };
  await registerApiKey(t.db, "ledger", "ledger", LEDGER_KEY);
  await registerApiKey(t.db, "ingest", "ingest", INGEST_KEY);
  admin = await staffSession(t.db, "admin");
});
afterAll(async () => t.drop());
beforeEach(() => configureApiRateLimits({}));

let addressSeq = 0;
/** Each test calls from its own client address, so the per-address limit of one does not reach another. */
const newAddress = () => `192.0.2.${++addressSeq}`;

function ledgerPost(key: string | null, options: { address?: string; staff?: TestStaff; contentType?: string } = {}) {
  const headers: Record<string, string> = { "content-type": options.contentType ?? "application/json", "x-tokenboard-client-ip": options.address ?? newAddress() };
  if (key) headers.authorization = `Bearer ${key}`;
  const body = JSON.stringify({ user_id: randomUUID(), amount: 5, kind: "grant", reason: "api key test", idempotency_key: randomUUID() });
  const request = requestAs(options.staff ?? null, "/api/v1/ledger", { method: "POST", headers, body });
  return ledgerAction({ request, params: {}, context: {} }) as Promise<Response>;
}

function balanceGet(key: string, address = newAddress()) {
  const userId = randomUUID();
  const request = new Request(`http://localhost/api/v1/users/${userId}/balance`, { headers: { authorization: `Bearer ${key}`, "x-tokenboard-client-ip": address } });
  return balanceLoader({ request, params: { userId }, context: {} }) as Promise<Response>;
}

function ingestPost(key: string, address = newAddress()) {
  const events = [{ user_id: randomUUID(), action_type: "prompt_suggestions", model_used: "gpt-4o-mini", tokens_used: 10, created_at: new Date().toISOString() }];
  const request = new Request("http://localhost/api/v1/usage", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-tokenboard-client-ip": address },
    body: JSON.stringify({ events }),
  });
  return usageAction({ request, params: {}, context: {} }) as Promise<Response>;
}

describe("revocation", () => {
  it("refuses a key on the very next request after it is revoked in the database", async () => {
    const key = "api-keys-test-revoke-me-0001";
    await registerApiKey(t.db, "revoke me", "ledger", key);
    expect((await ledgerPost(key)).status).toBe(201);
    await t.db.updateTable("api_keys").set({ revoked_at: new Date() }).where("name", "=", "revoke me").execute();
    expect((await ledgerPost(key)).status).toBe(401);
  });
});

describe("rate limits", () => {
  it("answers 429 with Retry-After to an address that keeps sending wrong keys, before any database lookup", async () => {
    const address = newAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await ledgerPost(`wrong-key-${i}-abcdefghijkl`, { address })).status);
    expect(statuses.every((s) => s === 401)).toBe(true);
    const before = queries;
    const limited = await ledgerPost("wrong-key-again-abcdefghijkl", { address });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ error: expect.stringMatching(/too many/i) });
    expect(queries - before, "database queries for a limited request").toBe(0);
    // Another address is not affected.
    expect((await ledgerPost(LEDGER_KEY)).status).toBe(201);
  });

  it("answers 429 with Retry-After to a key over its request limit, in the ingest answer's shape too", async () => {
    configureApiRateLimits({ keyRequests: 3, keyWindowSeconds: 60 });
    const key = "api-keys-test-busy-ingest-0001";
    await registerApiKey(t.db, "busy", "ingest", key);
    for (let i = 0; i < 3; i++) expect((await ingestPost(key, newAddress())).status).toBe(200);
    const limited = await ingestPost(key, newAddress());
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await limited.json()).toMatchObject({ accepted: 0, duplicates: 0, errors: [], message: expect.stringMatching(/too many/i) });
    // Other keys keep their own budget.
    expect((await ingestPost(INGEST_KEY)).status).toBe(200);
  });
});

describe("cookie-authenticated API calls", () => {
  it("answer 415 to a staff session posting text/plain, and change nothing", async () => {
    const before = await t.db.selectFrom("ledger_entries").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const response = await ledgerPost(null, { staff: admin, contentType: "text/plain" });
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ error: expect.stringMatching(/application\/json/) });
    const after = await t.db.selectFrom("ledger_entries").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
    expect((await ledgerPost(null, { staff: admin })).status).toBe(201);
  });

  it("leave bearer-key calls as they were", async () => {
    expect((await ledgerPost(LEDGER_KEY, { contentType: "text/plain" })).status).toBe(201);
  });
});

describe("scopes", () => {
  it("keep env keys apart: the ingest key cannot adjust or read balances, the ledger key cannot ingest", async () => {
    expect((await ledgerPost(INGEST_KEY)).status).toBe(403);
    expect((await balanceGet(INGEST_KEY)).status).toBe(403);
    expect((await ingestPost(LEDGER_KEY)).status).toBe(403);
    expect((await balanceGet(LEDGER_KEY)).status).toBe(200);
  });
});
