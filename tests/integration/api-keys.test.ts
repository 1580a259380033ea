import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { ServerBuild } from "@remix-run/node";
import type { KyselyPlugin } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { configureApiRateLimits, registerApiKey } from "~/lib/auth.server";
import { listApiKeys, sha256 } from "~/models/api-keys.server";
import { action as keysPageAction, loader as keysPageLoader } from "~/routes/api-keys/route";
import { action as ledgerAction } from "~/routes/api.v1.ledger/route";
import { loader as balanceLoader } from "~/routes/api.v1.balance/route";
import { action as usageAction } from "~/routes/api.v1.usage/route";
import * as ledgerRoute from "~/routes/api.v1.ledger/route";
import { createApp } from "../../server/app";
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

  it("answers each of many concurrent calls for its own key, and refuses a key to every call that comes after its revocation", async () => {
    const key = "api-keys-test-concurrent-0001";
    await registerApiKey(t.db, "concurrent", "ledger", key);
    const mixed = await Promise.all(Array.from({ length: 60 }, (_, i) => balanceGet(i % 3 === 0 ? `unknown-key-${i}-abcdefghijkl` : i % 3 === 1 ? key : INGEST_KEY)));
    expect(mixed.map((r) => r.status)).toEqual(Array.from({ length: 60 }, (_, i) => [401, 200, 403][i % 3]));
    // Calls in flight while the key is revoked may pass; none started after it may.
    const during = Array.from({ length: 30 }, () => balanceGet(key));
    await t.db.updateTable("api_keys").set({ revoked_at: new Date() }).where("name", "=", "concurrent").execute();
    const after = await Promise.all(Array.from({ length: 30 }, () => balanceGet(key)));
    expect(after.map((r) => r.status)).toEqual(Array(30).fill(401));
    expect((await Promise.all(during)).every((r) => r.status === 200 || r.status === 401)).toBe(true);
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

describe("rate limits through the HTTP server", () => {
  it("count wrong keys by the connection's address: a client cannot pick its own by header", async () => {
    const routes = { "routes/api.v1.ledger/route": { id: "routes/api.v1.ledger/route", path: "api/v1/ledger", module: ledgerRoute } } as unknown as ServerBuild["routes"];
    const app = createApp({ build: { routes } as ServerBuild, mode: "production" });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const call = (i: number) =>
        fetch(`${base}/api/v1/ledger`, {
          method: "POST",
          headers: { authorization: `Bearer guessed-key-${i}-abcdefghijkl`, "content-type": "application/json", "x-tokenboard-client-ip": `198.51.100.${i}` },
          body: "{}",
        });
      const statuses: number[] = [];
      for (let i = 0; i < 25; i++) statuses.push((await call(i)).status);
      expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
      expect(statuses.slice(20).every((s) => s === 429)).toBe(true);
      const limited = await call(99);
      expect(limited.headers.get("retry-after")).toMatch(/^\d+$/);
      expect(limited.headers.get("content-type")).toMatch(/^application\/json/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
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

interface PageAnswer {
  data: { ok: boolean; errors: Record<string, string>; created: { id: string; key: string; prefix: string } | null };
  init: { status?: number; headers?: Record<string, string> } | null;
}

async function onKeysPage(fields: Record<string, string>, staff: TestStaff = admin): Promise<PageAnswer> {
  const request = requestAs(staff, "/api-keys", { method: "POST", body: new URLSearchParams(fields) });
  return (await keysPageAction({ request, params: {}, context: {} })) as unknown as PageAnswer;
}

async function createdKey(name: string, scope: string): Promise<{ id: string; key: string; prefix: string }> {
  const answer = await onKeysPage({ intent: "create", name, scope });
  if (!answer.data.created) throw new Error(`not created: ${JSON.stringify(answer.data.errors)}`);
  return answer.data.created;
}

async function auditOf(keyId: string) {
  return t.db.selectFrom("audit_log").select(["action", "actor_id", "before", "after"]).where("target_type", "=", "api_key").where("target_id", "=", keyId).orderBy("id").execute();
}

/** last_used_at is written off the request's path: wait for it. */
async function lastUsed(keyId: string, timeoutMs = 3_000): Promise<Date | null> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const row = await t.db.selectFrom("api_keys").select("last_used_at").where("id", "=", keyId).executeTakeFirstOrThrow();
    if (row.last_used_at || Date.now() > until) return row.last_used_at;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("the API keys page", () => {
  it("creates a key shown once (not cached), stored only as a hash with its prefix, that works for its scope only", async () => {
    const answer = await onKeysPage({ intent: "create", name: "mobile app ingest", scope: "ingest" });
    expect(answer.init?.headers?.["cache-control"]).toBe("no-store");
    const created = answer.data.created!;
    expect(created.key).toMatch(/^tb_live_[\w-]{32}$/);
    expect(created.prefix).toBe(created.key.slice(0, 14));
    const row = await t.db.selectFrom("api_keys").selectAll().where("id", "=", created.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ key_hash: sha256(created.key), prefix: created.prefix, scope: "ingest", created_by: admin.id, revoked_at: null, expires_at: null });
    expect(JSON.stringify(row)).not.toContain(created.key);
    const audit = await auditOf(created.id);
    expect(audit).toEqual([expect.objectContaining({ action: "api_key.create", actor_id: admin.id })]);
    expect(JSON.stringify(audit)).not.toContain(created.key);

    expect((await ingestPost(created.key)).status).toBe(200);
    expect((await ledgerPost(created.key)).status).toBe(403);
    expect((await balanceGet(created.key)).status).toBe(403);
    // The page lists it, without the key.
    const page = (await keysPageLoader({ request: requestAs(admin, "/api-keys"), params: {}, context: {} })) as { keys: { id: string; prefix: string; createdBy: string; status: string }[] };
    expect(page.keys.find((k) => k.id === created.id)).toMatchObject({ prefix: created.prefix, createdBy: admin.email, status: "active" });
    expect(JSON.stringify(page)).not.toContain(created.key);
  });

  it("gives a read key balance reads and nothing else", async () => {
    const read = await createdKey("finance dashboard", "read");
    expect((await balanceGet(read.key)).status).toBe(200);
    expect((await ledgerPost(read.key)).status).toBe(403);
    expect((await ingestPost(read.key)).status).toBe(403);
    const ledger = await createdKey("billing backend", "ledger");
    expect((await ledgerPost(ledger.key)).status).toBe(201);
    expect((await balanceGet(ledger.key)).status).toBe(200);
    expect((await ingestPost(ledger.key)).status).toBe(403);
  });

  it("revokes a key: the next request with it is refused, and the revocation is audited", async () => {
    const key = await createdKey("to revoke", "ledger");
    expect((await ledgerPost(key.key)).status).toBe(201);
    expect((await onKeysPage({ intent: "revoke", key_id: key.id })).data.ok).toBe(true);
    expect((await ledgerPost(key.key)).status).toBe(401);
    expect((await balanceGet(key.key)).status).toBe(401);
    expect((await auditOf(key.id)).map((a) => a.action)).toEqual(["api_key.create", "api_key.revoke"]);
    const listed = await listApiKeys(t.db);
    expect(listed.find((k) => k.id === key.id)?.status).toBe("revoked");
  });

  it("rotates a key: both work during the overlap, the old one is refused once it has expired", async () => {
    const old = await createdKey("to rotate", "ingest");
    const answer = await onKeysPage({ intent: "rotate", key_id: old.id, overlap: "1h" });
    const next = answer.data.created!;
    expect(next.key).not.toBe(old.key);
    const oldRow = await t.db.selectFrom("api_keys").select(["expires_at", "replaced_by"]).where("id", "=", old.id).executeTakeFirstOrThrow();
    expect(oldRow.replaced_by).toBe(next.id);
    expect(oldRow.expires_at!.getTime() - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(oldRow.expires_at!.getTime() - Date.now()).toBeLessThanOrEqual(60 * 60_000);
    expect((await t.db.selectFrom("api_keys").select("scope").where("id", "=", next.id).executeTakeFirstOrThrow()).scope).toBe("ingest");
    expect((await ingestPost(old.key)).status).toBe(200);
    expect((await ingestPost(next.key)).status).toBe(200);
    // The overlap ends.
    await t.db.updateTable("api_keys").set({ expires_at: new Date(Date.now() - 1_000) }).where("id", "=", old.id).execute();
    expect((await ingestPost(old.key)).status).toBe(401);
    expect((await ingestPost(next.key)).status).toBe(200);
    expect((await auditOf(old.id)).map((a) => a.action)).toEqual(["api_key.create", "api_key.rotate"]);
    // A key that no longer works is not rotated again.
    const again = await onKeysPage({ intent: "rotate", key_id: old.id, overlap: "1h" });
    expect(again.init?.status).toBe(422);
    expect(again.data.errors).toHaveProperty("key_id");
  });

  it("records a key's last use, and writes it at most once a minute", async () => {
    const key = await createdKey("last use", "read");
    expect(await lastUsed(key.id, 0)).toBeNull();
    expect((await balanceGet(key.key)).status).toBe(200);
    const first = await lastUsed(key.id);
    expect(first).not.toBeNull();
    expect(Math.abs(first!.getTime() - Date.now())).toBeLessThan(60_000);
    expect((await balanceGet(key.key)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await lastUsed(key.id)).toEqual(first);
  });

  it("refuses a missing name, an unknown scope or overlap, naming the field, and creates nothing", async () => {
    const before = (await listApiKeys(t.db)).length;
    const noName = await onKeysPage({ intent: "create", name: " ", scope: "ingest" });
    expect(noName.init?.status).toBe(422);
    expect(noName.data.errors).toHaveProperty("name");
    expect((await onKeysPage({ intent: "create", name: "x", scope: "admin" })).data.errors).toHaveProperty("scope");
    const key = await createdKey("overlap check", "ingest");
    expect((await onKeysPage({ intent: "rotate", key_id: key.id, overlap: "90d" })).data.errors).toHaveProperty("overlap");
    expect((await onKeysPage({ intent: "revoke", key_id: "not-a-uuid" })).data.errors).toHaveProperty("key_id");
    expect((await listApiKeys(t.db)).length).toBe(before + 1);
  });

  it("is for admins only", async () => {
    const support = await staffSession(t.db, "support");
    const refused = await onKeysPage({ intent: "create", name: "sneaky", scope: "ledger" }, support).catch((e: unknown) => e);
    expect((refused as Response).status).toBe(403);
    expect(await t.db.selectFrom("api_keys").select("id").where("name", "=", "sneaky").execute()).toEqual([]);
  });
});
