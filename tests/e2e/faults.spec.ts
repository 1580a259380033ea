import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { expect, test } from "@playwright/test";
import pg from "pg";
import { createTokenboardClient, newEventId } from "../../client/track-token-usage";
import { freePort, startEmbedded, type EmbeddedDatabase } from "../../db/embedded";
import { logIn } from "./support";

/**
 * PostgreSQL stops while the production server serves pages and ingests, then comes back: pages
 * answer a 503 page that says what to do, the ingest API 503 + Retry-After, the same server
 * process recovers without a restart, and clients that retry with the same event ids end with
 * every event stored exactly once. The server runs on a PostgreSQL of this test's own
 * (DATABASE_URL), so stopping it leaves the suite's server alone. Prints its figures.
 */
const ADMIN = { email: "faults@e2e.test", password: "faults-admin-password" };
const INGEST_KEY = "faults-ingest-key-0123456789";
const BATCH = 200;
const CLIENTS = 2;

let dataDir: string;
let database: EmbeddedDatabase;
let dbPort: number;
let server: ChildProcess;
let baseUrl: string;
const serverLog: string[] = [];

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check().catch(() => false)) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

const healthy = async () => (await fetch(`${baseUrl}/healthz`)).status === 200;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  // Inside the project, like the suite's own data: PostgreSQL runs as its own user, which
  // cannot enter a private mkdtemp directory.
  dataDir = path.resolve(`.data-e2e-faults-${process.pid}`);
  fs.rmSync(dataDir, { recursive: true, force: true });
  dbPort = await freePort();
  database = await startEmbedded({ dataDir: path.join(dataDir, "pg"), port: dbPort });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  server = spawn("npx", ["tsx", "server/main.ts"], {
    env: {
      ...process.env,
      DATABASE_URL: database.url("tokenboard"),
      PORT: String(port),
      HOST: "127.0.0.1",
      TOKENBOARD_BUILD_DIR: process.env.TOKENBOARD_BUILD_DIR ?? "build",
      TOKENBOARD_ADMIN_EMAIL: ADMIN.email,
      TOKENBOARD_ADMIN_PASSWORD: ADMIN.password,
      TOKENBOARD_INGEST_KEY: INGEST_KEY,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Kept, and printed when the test fails.
  for (const stream of [server.stdout, server.stderr]) stream?.on("data", (chunk: Buffer) => serverLog.push(chunk.toString("utf8")));
  server.once("exit", (code, signal) => serverLog.push(`[faults] server exited: code ${code}, signal ${signal}\n`));
  await waitFor("the fault test's server answering /healthz", healthy, 120_000);
});

test.afterEach(() => {
  const testInfo = test.info();
  if (testInfo.status !== testInfo.expectedStatus) console.log(`[faults] the server's output:\n${serverLog.join("").slice(-6000)}`);
});

test.afterAll(async () => {
  if (server && running(server)) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  await database?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test("PostgreSQL stops under ingest and page loads: 503s, then recovery without a restart and every event stored once", async ({ page }) => {
  test.setTimeout(180_000);
  await logIn(page, ADMIN, { baseUrl });
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();

  // Clients send batches back to back; a 503 or a dropped connection is retried with the same
  // body, so the same event ids (the typed client's behaviour; its wait for Retry-After is
  // capped at 250 ms to keep the test short).
  const statuses = new Map<number, number>();
  let networkErrors = 0;
  let refusalsWithoutRetryAfter = 0;
  const countingFetch: typeof fetch = async (input, init) => {
    try {
      const response = await fetch(input, init);
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status === 503 && !/^\d+$/.test(response.headers.get("retry-after") ?? "")) refusalsWithoutRetryAfter += 1;
      return response;
    } catch (error) {
      networkErrors += 1;
      throw error;
    }
  };
  const sent: string[] = [];
  let accepted = 0;
  let duplicates = 0;
  let sending = true;
  const sender = async () => {
    const client = createTokenboardClient({ baseUrl, ingestKey: INGEST_KEY, retries: 200, fetch: countingFetch, sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 250))) });
    while (sending) {
      const events = Array.from({ length: BATCH }, () => ({
        event_id: newEventId(),
        user_id: "00000000-0000-4000-8000-0000000000fa",
        action_type: "chat_conversation" as const,
        model_used: "gpt-4o",
        tokens_used: 3000,
      }));
      sent.push(...events.map((e) => e.event_id));
      const answer = await client.trackTokenUsage(events);
      accepted += answer.accepted;
      duplicates += answer.duplicates;
    }
  };
  const senders = Promise.all(Array.from({ length: CLIENTS }, sender));
  await waitFor("events accepted before the stop", async () => accepted >= 5 * BATCH, 30_000);

  // PostgreSQL stops (fast shutdown: it ends the sessions and the transactions in flight).
  await database.stop();
  const stoppedAt = Date.now();
  const down = await page.goto(`${baseUrl}/`);
  expect(down?.status()).toBe(503);
  await expect(page.getByRole("alert")).toContainText("The database is not reachable right now");
  await expect(page.getByRole("alert")).not.toContainText(/ECONNREFUSED|at .*\.js|SELECT/);
  const health = await fetch(`${baseUrl}/healthz`);
  expect(health.status).toBe(503);
  await waitFor("the ingest API answering 503", async () => (statuses.get(503) ?? 0) > 0, 10_000);
  // A second of outage while the clients keep retrying.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const refusedWhileDown = statuses.get(503) ?? 0;

  // Back on the same port and data: the same server process recovers by itself.
  database = await startEmbedded({ dataDir: path.join(dataDir, "pg"), port: dbPort });
  const outageMs = Date.now() - stoppedAt;
  const acceptedBefore = accepted;
  const recoveryMs = await waitFor("/healthz answering 200 again", healthy, 30_000);
  const ingestRecoveryMs = await waitFor("events accepted again", async () => accepted > acceptedBefore, 30_000);
  // Neither exited nor killed by a signal (a process ended by a signal keeps exitCode null).
  expect(running(server)).toBe(true);
  const up = await page.goto(`${baseUrl}/`);
  expect(up?.status()).toBe(200);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();

  sending = false;
  await senders;
  expect(accepted + duplicates).toBe(sent.length);
  expect(statuses.get(500) ?? 0).toBe(0);
  expect(refusalsWithoutRetryAfter).toBe(0);

  const client = new pg.Client({ connectionString: database.url("tokenboard") });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string; distinct_ids: string }>(
      "SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_ids FROM public.token_usage WHERE event_id = ANY($1)",
      [sent],
    );
    expect(Number(rows[0]?.n)).toBe(sent.length);
    expect(Number(rows[0]?.distinct_ids)).toBe(sent.length);
    expect(Number(rows[0]?.n)).toBe(accepted);
  } finally {
    await client.end();
  }
  console.log(
    `[faults] ${sent.length.toLocaleString("en-US")} events sent by ${CLIENTS} clients, ${accepted.toLocaleString("en-US")} stored once each (${duplicates} answered as duplicates); ` +
      `PostgreSQL down ${outageMs} ms; ${refusedWhileDown} answers 503 by the time it restarted, ${statuses.get(503) ?? 0} in all, ${networkErrors} network errors, 0 answers 500; ` +
      `/healthz 200 again ${recoveryMs} ms after PostgreSQL was back, ingest accepted again after ${ingestRecoveryMs} ms; page 503 while down, 200 after, same server process`,
  );
});
