import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import type { ServerBuild } from "@remix-run/node";
import express from "express";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as rawRoute from "../../app/routes/reports.raw/route";
import * as exportRoute from "../../app/routes/reports.export/route";
import { apiRouter } from "../../server/app";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

// Read once by getEnv, before the first export: a cap of 2 and a short stall timeout.
process.env.TOKENBOARD_EXPORTS_PER_STAFF = "2";
process.env.TOKENBOARD_EXPORT_STALL_SECONDS = "1";

/**
 * Issue 23: 60 stalled readers of raw.csv held 60 COPY queries open and took the server from
 * 643 MB to 1.37 GB. Each staff member may run a bounded number of exports at once, and a
 * reader that stops reading is cut after the stall timeout, its database connection freed.
 */
type Loader = (args: { request: Request; params: Record<string, string>; context: object }) => Promise<unknown>;

const MONTH = "2025-03";
const ROWS = 60_000;

let t: TestDatabase;
let analyst: TestStaff;
let otherAnalyst: TestStaff;

beforeAll(async () => {
  t = await createTestDatabase();
  analyst = await staffSession(t.db, "analyst");
  otherAnalyst = await staffSession(t.db, "analyst");
  await sql`
    INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, route, created_at)
    SELECT ('00000000-0000-4000-8000-' || lpad((g % 500)::text, 12, '0'))::uuid, 'chat_conversation', 'gpt-4o-mini', 1000 + g % 3000,
           '/api/viva/chat', timestamptz '2025-03-01 00:00:00+00' + (g || ' seconds')::interval
    FROM generate_series(1, ${ROWS}) AS g`.execute(t.db);
});
afterAll(async () => t?.drop());

async function openRaw(staff: TestStaff): Promise<Response> {
  return (await (rawRoute.loader as Loader)({ request: requestAs(staff, `/reports/raw.csv?month=${MONTH}&tz=UTC`), params: {}, context: {} })) as Response;
}

/** Backends running an export's COPY right now. */
async function copiesRunning(): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY (%' AND state <> 'idle'`.execute(t.db);
  return r.rows[0]?.n ?? 0;
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return check();
}

describe("concurrent exports per staff member", () => {
  it("beyond the cap answers 429 with Retry-After; another staff member has their own; a finished export frees its slot", async () => {
    const first = await openRaw(analyst);
    const second = await openRaw(analyst);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await openRaw(analyst);
    expect(third.status).toBe(429);
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await third.text()).toMatch(/at most 2 exports at once/);
    const monthly = (await (exportRoute.loader as Loader)({ request: requestAs(analyst, `/reports/export.csv?month=${MONTH}&tz=UTC`), params: {}, context: {} })) as Response;
    expect(monthly.status).toBe(429);
    const other = await openRaw(otherAnalyst);
    expect(other.status).toBe(200);
    await other.body?.cancel();

    // One read to the end, one cancelled: both slots come back.
    const text = await first.text();
    expect(text.split("\n").filter(Boolean)).toHaveLength(ROWS + 1);
    await second.body?.cancel();
    expect(await until(async () => (await copiesRunning()) === 0, 5_000)).toBe(true);
    const again = [await openRaw(analyst), await openRaw(analyst)];
    expect(again.map((r) => r.status)).toEqual([200, 200]);
    for (const r of again) await r.body?.cancel();
  });
});

describe("a reader that stops reading", () => {
  it("is cut after the stall timeout; its COPY ends, its connection leaves the pool and its slot is free", async () => {
    await until(async () => (await copiesRunning()) === 0, 5_000);
    const response = await openRaw(analyst);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const firstChunk = await reader.read();
    expect(firstChunk.done).toBe(false);
    expect(await copiesRunning()).toBe(1);
    expect(t.pool.totalCount - t.pool.idleCount).toBe(1);
    // The reader stops here.
    expect(await until(async () => (await copiesRunning()) === 0, 5_000)).toBe(true);
    expect(await until(async () => t.pool.totalCount - t.pool.idleCount === 0, 2_000), "the export's client is still checked out").toBe(true);
    await expect(async () => {
      for (;;) if ((await reader.read()).done) break;
    }).rejects.toThrow(/stopped reading/);
    const again = [await openRaw(analyst), await openRaw(analyst)];
    expect(again.map((r) => r.status)).toEqual([200, 200]);
    for (const r of again) await r.body?.cancel();
  });

  it("over HTTP: the server stops at the socket's backpressure and cuts the stalled download", async () => {
    await until(async () => (await copiesRunning()) === 0, 5_000);
    const routes = { "routes/reports.raw/route": { id: "routes/reports.raw/route", path: "reports/raw.csv", module: rawRoute } } as unknown as ServerBuild["routes"];
    const app = express();
    app.use(apiRouter({ routes }));
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const { port } = server.address() as AddressInfo;
    try {
      // A whole download through the same path first: every row arrives.
      const full = await fetch(`http://127.0.0.1:${port}/reports/raw.csv?month=${MONTH}&tz=UTC`, { headers: { cookie: analyst.cookie } });
      expect(full.status).toBe(200);
      expect(full.headers.get("content-type")).toMatch(/^text\/csv/);
      const fullText = await full.text();
      expect(fullText.split("\n").filter(Boolean)).toHaveLength(ROWS + 1);

      const socket = connect(port, "127.0.0.1");
      let received = 0;
      let stalled = false;
      socket.on("data", (chunk: Buffer) => {
        received += chunk.length;
        if (received > 64 * 1024 && !stalled) {
          stalled = true;
          socket.pause();
        }
      });
      // The server ends the response by destroying the connection.
      socket.on("error", () => {});
      const ended = new Promise<void>((resolve) => socket.on("close", () => resolve()));
      socket.write(`GET /reports/raw.csv?month=${MONTH}&tz=UTC HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${analyst.cookie}\r\nConnection: close\r\n\r\n`);
      expect(await until(async () => received > 64 * 1024, 5_000)).toBe(true);
      // Paused: the COPY must stop being read, then be ended by the stall timeout.
      expect(await until(async () => (await copiesRunning()) === 0, 8_000)).toBe(true);
      socket.resume();
      await ended;
      expect(received).toBeLessThan(Buffer.byteLength(fullText));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
