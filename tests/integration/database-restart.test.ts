import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, createPool } from "../../db/database";
import { freePort, startEmbedded, type EmbeddedDatabase } from "../../db/embedded";
import { prepareDatabase } from "../../db/setup";
import { registerApiKey } from "../../app/lib/auth.server";
import { isDatabaseUnavailable } from "../../app/lib/db.server";
import { action } from "../../app/routes/api.v1.usage/route";
import { loader as healthz } from "../../app/routes/healthz/route";

/**
 * PostgreSQL stops while the app ingests: requests get 503 + Retry-After, nothing accepted is
 * lost, and when the server is back the same process recovers without a restart; a client that
 * retries with the same event ids ends with every event stored exactly once.
 */
const KEY = "restart-ingest-key-0123456789";
const dir = path.resolve(".data-test", `restart-db-${process.pid}`);
let server: EmbeddedDatabase;
let port: number;

beforeAll(async () => {
  port = await freePort();
  server = await startEmbedded({ dataDir: dir, port, durability: "none" });
  const setup = createDb(server.url("tokenboard"), 2);
  await prepareDatabase(setup.db);
  await registerApiKey(setup.db, "restart", "ingest", KEY);
  await setup.db.destroy();
  // The app's own pool, as in a running server.
  globalThis.__tokenboardDb = createDb(server.url("tokenboard"), 4);
});

afterAll(async () => {
  const appDb = globalThis.__tokenboardDb;
  globalThis.__tokenboardDb = undefined;
  await appDb?.db.destroy();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function batch(ids: string[]): Request {
  const events = ids.map((id) => ({ event_id: id, user_id: "00000000-0000-4000-8000-00000000000a", action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 3000 }));
  return new Request("http://localhost/api/v1/usage", {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ events }),
  });
}

async function post(ids: string[]): Promise<{ status: number; retryAfter: string | null; body: { accepted: number; duplicates: number } }> {
  let response: Response;
  try {
    response = (await action({ request: batch(ids), params: {}, context: {} })) as Response;
  } catch (thrown) {
    if (!(thrown instanceof Response)) throw thrown;
    response = thrown;
  }
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body: (await response.json()) as { accepted: number; duplicates: number } };
}

describe("the database goes away and comes back", () => {
  it("answers 503 while it is down, then recovers in the same process with every event stored once", async () => {
    const first = Array.from({ length: 50 }, () => randomUUID());
    const second = Array.from({ length: 50 }, () => randomUUID());
    expect((await post(first)).body).toMatchObject({ accepted: 50, duplicates: 0 });

    await server.stop();
    const down = await post(second);
    expect(down.status).toBe(503);
    expect(down.retryAfter).toBe("5");
    expect(((await healthz()) as Response).status).toBe(503);

    server = await startEmbedded({ dataDir: dir, port, durability: "none" });
    // The client retries the failed batch and, not knowing, the first one too.
    let retried = await post(second);
    for (let i = 0; i < 20 && retried.status === 503; i += 1) {
      await new Promise((r) => setTimeout(r, 250));
      retried = await post(second);
    }
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ accepted: 50, duplicates: 0 });
    expect((await post(first)).body).toMatchObject({ accepted: 0, duplicates: 50 });
    expect(((await healthz()) as Response).status).toBe(200);

    const check = createDb(server.url("tokenboard"), 1);
    const stored = await check.db.selectFrom("token_usage").select((eb) => eb.fn.countAll<number>().as("n")).where("event_id", "in", [...first, ...second]).executeTakeFirstOrThrow();
    await check.db.destroy();
    expect(stored.n).toBe(100);
  });
});

describe("a connection checked out when the database stops", () => {
  it("does not end the process; its next query fails as 'database unavailable' and the pool serves again once it is back", async () => {
    const pool = createPool(server.url("tokenboard"), 2);
    try {
      // Held between two queries, as a transaction or the job runner holds one: the server's
      // "terminating connection" arrives with no query running. Without a listener on the client
      // that 'error' event is uncaught and ends the process (vitest reports it as an error).
      const held = await pool.connect();
      await held.query("SELECT 1");
      const ended = new Promise((resolve) => held.once("end", resolve));
      await server.stop();
      await ended;
      const failure = await held.query("SELECT 1").then(() => null, (error: unknown) => error);
      expect(failure).toBeInstanceOf(Error);
      expect(isDatabaseUnavailable(failure)).toBe(true);
      held.release();
      server = await startEmbedded({ dataDir: dir, port, durability: "none" });
      const { rows } = await pool.query<{ one: number }>("SELECT 1 AS one");
      expect(rows[0]?.one).toBe(1);
    } finally {
      await pool.end();
    }
  });
});
