import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { ServerBuild } from "@remix-run/node";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerApiKey } from "~/lib/auth.server";
import * as balanceRoute from "~/routes/api.v1.balance/route";
import * as ledgerRoute from "~/routes/api.v1.ledger/route";
import * as usageRoute from "~/routes/api.v1.usage/route";
import { apiRouter, createApp, securityHeaders } from "../../server/app";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * The API served from its route modules without Remix's request pipeline (server/app.ts
 * apiRouter) answers exactly what the route function answers to the same request, for every
 * kind of answer the contract has; what a module does not handle falls through.
 */
const LEDGER_KEY = "api-router-ledger-key-0001";
const INGEST_KEY = "api-router-ingest-key-0001";

let t: TestDatabase;
let base = "";
let close: () => Promise<void>;

const ROUTES = {
  "routes/api.v1.ledger/route": { id: "routes/api.v1.ledger/route", path: "api/v1/ledger", module: ledgerRoute },
  "routes/api.v1.balance/route": { id: "routes/api.v1.balance/route", path: "api/v1/users/:userId/balance", module: balanceRoute },
  "routes/api.v1.usage/route": { id: "routes/api.v1.usage/route", path: "api/v1/usage", module: usageRoute },
  "routes/overview/route": { id: "routes/overview/route", path: undefined, module: {} },
} as unknown as ServerBuild["routes"];

beforeAll(async () => {
  t = await createTestDatabase();
  await registerApiKey(t.db, "ledger", "ledger", LEDGER_KEY);
  await registerApiKey(t.db, "ingest", "ingest", INGEST_KEY);
  const app = express();
  app.use(securityHeaders("production"));
  app.use(apiRouter({ routes: ROUTES }));
  app.all("*", (_req, res) => res.status(299).type("text/plain").send("passed to remix"));
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await close();
  await t.drop();
});

interface Call {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/** The route function's own answer to the same request. */
async function direct(call: Call): Promise<Response> {
  const request = new Request(`http://localhost${call.path}`, { method: call.method, headers: call.headers, body: call.body });
  const url = new URL(request.url);
  if (url.pathname === "/api/v1/ledger") return call.method === "GET" ? new Response(null, { status: 299 }) : ledgerRoute.action({ request, params: {}, context: {} });
  if (url.pathname === "/api/v1/usage") return call.method === "GET" ? usageRoute.loader() : usageRoute.action({ request, params: {}, context: {} });
  const userId = url.pathname.split("/")[4] as string;
  return balanceRoute.loader({ request, params: { userId }, context: {} });
}

const FRAMING = new Set(["date", "connection", "keep-alive", "content-length", "transfer-encoding"]);
/**
 * Headers the route set (the HTTP layer adds the security headers and framing). Express's
 * `res.append` — which Remix's express adapter used too — adds the charset to a JSON type.
 */
function routeHeaders(response: Response, viaExpress: boolean): Record<string, string> {
  const own = new Set(["content-type", "allow", "retry-after", "cache-control"]);
  const headers = Object.fromEntries([...response.headers].filter(([k]) => own.has(k) && !FRAMING.has(k)));
  if (!viaExpress && headers["content-type"] === "application/json") headers["content-type"] = "application/json; charset=utf-8";
  return headers;
}

async function same(call: Call): Promise<{ status: number; body: string }> {
  const viaHttp = await fetch(`${base}${call.path}`, { method: call.method, headers: call.headers, body: call.body });
  const httpBody = await viaHttp.text();
  const own = await direct(call);
  const ownBody = await own.text();
  expect({ status: viaHttp.status, headers: routeHeaders(viaHttp, true), body: httpBody }).toEqual({ status: own.status, headers: routeHeaders(own, false), body: ownBody });
  expect(viaHttp.headers.get("x-content-type-options")).toBe("nosniff");
  return { status: viaHttp.status, body: httpBody };
}

const ledgerHeaders = { authorization: `Bearer ${LEDGER_KEY}`, "content-type": "application/json" };

describe("API without the Remix pipeline", () => {
  it("answers as the route function does: validation, auth, bad JSON, oversized and unknown-user reads", async () => {
    const user = randomUUID();
    const cases: [Call, number][] = [
      [{ method: "POST", path: "/api/v1/ledger", headers: ledgerHeaders, body: "{not json" }, 400],
      [{ method: "POST", path: "/api/v1/ledger", headers: ledgerHeaders, body: JSON.stringify({ user_id: "x", amount: -1, kind: "steal" }) }, 422],
      [{ method: "POST", path: "/api/v1/ledger", headers: { "content-type": "application/json" }, body: "{}" }, 401],
      [{ method: "POST", path: "/api/v1/ledger", headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" }, body: "{}" }, 403],
      [{ method: "POST", path: "/api/v1/ledger", headers: ledgerHeaders, body: JSON.stringify({ pad: "x".repeat(20_000) }) }, 413],
      [{ method: "GET", path: `/api/v1/users/${user}/balance`, headers: { authorization: `Bearer ${LEDGER_KEY}` } }, 200],
      [{ method: "GET", path: "/api/v1/users/not-a-uuid/balance", headers: { authorization: `Bearer ${LEDGER_KEY}` } }, 400],
      [{ method: "GET", path: "/api/v1/usage" }, 405],
      [{ method: "POST", path: "/api/v1/usage", headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json" }, body: JSON.stringify({ events: [{ user_id: "x" }] }) }, 422],
    ];
    for (const [call, status] of cases) expect((await same(call)).status, `${call.method} ${call.path}`).toBe(status);
  });

  it("writes once: a grant is 201, its replay over HTTP and by the function are the same 200", async () => {
    const user = randomUUID();
    const body = JSON.stringify({ user_id: user, amount: 70, kind: "grant", reason: "api router test", idempotency_key: `router-${randomUUID()}` });
    const first = await fetch(`${base}/api/v1/ledger`, { method: "POST", headers: ledgerHeaders, body });
    expect(first.status).toBe(201);
    const replay = await same({ method: "POST", path: "/api/v1/ledger", headers: ledgerHeaders, body });
    expect(replay.status).toBe(200);
    expect(JSON.parse(replay.body)).toMatchObject({ user_id: user, balance: 70, idempotent_replay: true });
    const entries = await t.db.selectFrom("ledger_entries").select("id").where("user_id", "=", user).execute();
    expect(entries).toHaveLength(1);
  });

  it("streams a body without a declared length, and the route's size limit still holds", async () => {
    const big = JSON.stringify({ pad: "y".repeat(40_000) });
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const response = await fetch(`${base}/api/v1/ledger`, { method: "POST", headers: ledgerHeaders, body: stream, duplex: "half" } as RequestInit);
    expect(response.status).toBe(413);
  });

  it("leaves what a module does not handle to Remix: GET without a loader, HEAD, other paths", async () => {
    expect((await fetch(`${base}/api/v1/ledger`)).status).toBe(299);
    expect((await fetch(`${base}/api/v1/usage`, { method: "HEAD" })).status).toBe(299);
    expect((await fetch(`${base}/api/v1/nothing-here`, { method: "POST", body: "{}" })).status).toBe(299);
    expect(await (await fetch(`${base}/reports`)).text()).toBe("passed to remix");
  });
});

describe("the API in the production app (createApp)", () => {
  it("answers with the JSON security headers and records the connection's address, not one the client sent", async () => {
    const build = { routes: ROUTES, entry: { module: {} }, assets: {} } as unknown as ServerBuild;
    const server = createApp({ build, mode: "production" }).listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    try {
      const user = randomUUID();
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/ledger`, {
        method: "POST",
        headers: { ...ledgerHeaders, "X-Tokenboard-Client-Ip": "203.0.113.9" },
        body: JSON.stringify({ user_id: user, amount: 5, kind: "grant", reason: "headers test", idempotency_key: `router-${randomUUID()}` }),
      });
      expect(response.status).toBe(201);
      expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(response.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("referrer-policy")).toBe("same-origin");
      const audit = await t.db.selectFrom("audit_log").select("ip").where("target_id", "=", user).executeTakeFirstOrThrow();
      expect(audit.ip).toBe("127.0.0.1");

      // The cross-site check runs before the API router and the page middleware: its refusal
      // carries the security headers itself.
      const crossSite = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/ledger`, {
        method: "POST",
        headers: { "content-type": "application/json", cookie: "tb_session=x", origin: "https://evil.example" },
        body: "{}",
      });
      expect(crossSite.status).toBe(403);
      expect(crossSite.headers.get("x-content-type-options")).toBe("nosniff");
      expect(crossSite.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
