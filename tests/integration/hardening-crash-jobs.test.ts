import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { sql } from "kysely";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { costCentsSql } from "../../app/models/cost.server";
import { detectOutliers } from "../../app/models/outliers.server";
import { rebuildRollups, runRollup, usageFacts } from "../../app/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { insertTestPricing, insertUsage, randomUsageRows, seededRandom } from "../support/usage-rows";
import { allowUnregisteredTypes, normalRows, plantedRows } from "./outliers-fixtures";

/**
 * Crash in the middle of a job: each job runs in a child process and is SIGKILLed while it is
 * provably mid-work (blocked on a lock the test holds, after part of its work has committed);
 * its backend is then terminated (pg_terminate_backend, as when the connection dies). The next
 * run must leave everything as a clean run would: rollups equal raw SQL and a full rebuild,
 * outlier flags equal a clean detection's, none doubled or missing.
 */
const CHILD = path.resolve("tests/support/hardening-job-child.ts");

let rollupDb: TestDatabase;
let outlierDb: TestDatabase;
beforeAll(async () => {
  rollupDb = await createTestDatabase({ setAppUrl: false });
  outlierDb = await createTestDatabase({ setAppUrl: false });
  await allowUnregisteredTypes(outlierDb.db);
});
afterAll(async () => {
  await rollupDb?.drop();
  await outlierDb?.drop();
});

interface Child {
  process: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startJob(url: string, job: "rollup" | "outliers", arg: string): Child {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, job, arg], { env: { ...process.env, DATABASE_URL: url }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => void (out += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => void (out += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { process: child, output: () => out, exited };
}

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The job's backend once it waits on a lock: its pid and the statement it is in. */
async function blockedBackend(t: TestDatabase, job: string): Promise<{ pid: number; query: string }> {
  return until(`${job} to block on the test's lock`, async () => {
    const r = await sql<{ pid: number; query: string }>`
      SELECT pid, query FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = ${`hardening-${job}`} AND wait_event_type = 'Lock'`.execute(t.db);
    return r.rows[0];
  });
}

/** SIGKILL the process, then end its backend as a dead connection would, and wait until it is gone. */
async function killMidWork(t: TestDatabase, child: Child, pid: number): Promise<void> {
  child.process.kill("SIGKILL");
  const exit = await child.exited;
  expect(exit.signal).toBe("SIGKILL");
  expect(child.output()).not.toContain("done");
  await sql`SELECT pg_terminate_backend(${pid})`.execute(t.db);
  await until("the killed job's backend to end", async () => {
    const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${pid}`.execute(t.db);
    return r.rows[0]?.n === 0;
  });
}

async function lockHolder(t: TestDatabase, statement: string): Promise<pg.PoolClient> {
  const client = await t.pool.connect();
  await client.query("BEGIN");
  await client.query(statement);
  return client;
}

async function release(client: pg.PoolClient): Promise<void> {
  await client.query("ROLLBACK");
  client.release();
}

// ---------------------------------------------------------------------------------------

const FROM = new Date("2025-03-01T00:00:00Z");
const TO = new Date("2025-04-01T00:00:00Z");
const LOCKED_DAY = "2025-03-20";
const LOCKED_KEY = { action_type: "chat_conversation", route: "/api/viva/chat", model_used: "gpt-4o" };
const BATCH = 1_000;

async function rawTotals(t: TestDatabase) {
  const r = await sql`
    SELECT count(*)::bigint AS calls, COALESCE(sum(u.tokens_used), 0)::bigint AS tokens,
           count(*) FILTER (WHERE NOT u.success)::bigint AS failures, round(COALESCE(sum(${costCentsSql}), 0), 4)::float8 AS cost
    FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE u.created_at >= ${FROM} AND u.created_at < ${TO}`.execute(t.db);
  return r.rows[0];
}

async function rollupTotals(t: TestDatabase) {
  const r = await sql`
    SELECT COALESCE(sum(calls), 0)::bigint AS calls, COALESCE(sum(tokens), 0)::bigint AS tokens,
           COALESCE(sum(failures), 0)::bigint AS failures, round(COALESCE(sum(cost_cents), 0), 4)::float8 AS cost
    FROM (${usageFacts({ start: FROM, end: TO })}) f`.execute(t.db);
  return r.rows[0];
}

async function queueLength(t: TestDatabase): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM tokenboard.usage_rollup_queue`.execute(t.db);
  return r.rows[0]?.n ?? -1;
}

const ROLLUP_TABLES = {
  usage_rollup_15m: "bucket, action_type, route, model",
  usage_rollup_day: "day, action_type, route, model",
  usage_hist_15m: "bucket, action_type, bin",
  usage_hist_day: "day, action_type, bin",
  user_usage_day: "day, user_id, action_type",
  user_usage_day_total: "day, user_id",
};

/** Every rollup table's rows, as one digest per table (rows with no calls left are ignored). */
async function rollupDigests(t: TestDatabase): Promise<Record<string, { n: number; digest: string }>> {
  const out: Record<string, { n: number; digest: string }> = {};
  for (const [table, key] of Object.entries(ROLLUP_TABLES)) {
    const r = await sql<{ n: number; digest: string }>`
      SELECT count(*)::int AS n, md5(string_agg(r::text, '|' ORDER BY ${sql.raw(key)})) AS digest
      FROM ${sql.table(`tokenboard.${table}`)} r WHERE r.calls <> 0`.execute(t.db);
    out[table] = r.rows[0] as { n: number; digest: string };
  }
  return out;
}

describe("the rollup job killed mid-batch", () => {
  const random = seededRandom(424242);
  const dayOf = (d: string) => new Date(`${d}T00:00:00Z`).getTime();
  // Rows on every day but LOCKED_DAY, so only the batch holding LOCKED_DAY's rows meets the lock.
  const rowsAvoidingLockedDay = (n: number, from: Date, to: Date) =>
    randomUsageRows(random, n, from, to).filter((r) => (r.created_at as Date).toISOString().slice(0, 10) !== LOCKED_DAY);

  it("leaves committed batches, rolls back the killed one, and the next run equals raw SQL and a full rebuild", async () => {
    const t = rollupDb;
    await insertTestPricing(t.db);
    // History already rolled up, including one row of the key the test will lock.
    await insertUsage(t.db, [
      ...rowsAvoidingLockedDay(1_500, FROM, TO),
      { user_id: "00000000-0000-4000-8000-000000000001", ...LOCKED_KEY, tokens_used: 3_000, created_at: new Date(`${LOCKED_DAY}T08:00:00Z`) },
    ]);
    await runRollup(t.db);
    expect(await queueLength(t)).toBe(0);

    // The queue: 3 whole batches of other days, then rows of the locked key, then more.
    const first = rowsAvoidingLockedDay(3 * BATCH + 200, FROM, new Date("2025-03-15T00:00:00Z")).slice(0, 3 * BATCH);
    expect(first).toHaveLength(3 * BATCH);
    await insertUsage(t.db, first);
    await insertUsage(t.db, Array.from({ length: 50 }, (_, i) => ({
      user_id: `00000000-0000-4000-8000-00000000000${1 + (i % 9)}`, ...LOCKED_KEY, tokens_used: 2_000 + i * 37, success: i % 7 !== 0,
      created_at: new Date(dayOf(LOCKED_DAY) + 60_000 * (i * 17 + 3)),
    })));
    await insertUsage(t.db, rowsAvoidingLockedDay(2_500, new Date("2025-03-21T00:00:00Z"), TO));
    const queued = await queueLength(t);

    const holder = await lockHolder(t, `SELECT 1 FROM tokenboard.usage_rollup_day WHERE day = '${LOCKED_DAY}' AND action_type = '${LOCKED_KEY.action_type}' AND route = '${LOCKED_KEY.route}' AND model = '${LOCKED_KEY.model_used}' FOR UPDATE`);
    let child: Child | undefined;
    try {
      child = startJob(t.url, "rollup", String(BATCH));
      const backend = await blockedBackend(t, "rollup");
      expect(backend.query).toMatch(/usage_rollup_queue/);
      // Mid-work: three batches are committed, the fourth is in flight.
      expect(await queueLength(t)).toBe(queued - 3 * BATCH);
      // Pages stay exact at that moment (rollups + queue tail).
      expect(await rollupTotals(t)).toEqual(await rawTotals(t));
      await killMidWork(t, child, backend.pid);
    } finally {
      if (child && child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
      await release(holder);
    }

    // The killed batch was rolled back whole: its rows are queued again, nothing was half-added.
    expect(await queueLength(t)).toBe(queued - 3 * BATCH);
    expect(await rollupTotals(t)).toEqual(await rawTotals(t));

    const next = await runRollup(t.db, { batchSize: BATCH });
    expect(next.rows).toBe(queued - 3 * BATCH);
    expect(await queueLength(t)).toBe(0);
    expect(await rollupTotals(t)).toEqual(await rawTotals(t));
    const locked = await sql<{ calls: number }>`
      SELECT calls FROM tokenboard.usage_rollup_day WHERE day = ${LOCKED_DAY} AND action_type = ${LOCKED_KEY.action_type} AND route = ${LOCKED_KEY.route} AND model = ${LOCKED_KEY.model_used}`.execute(t.db);
    expect(locked.rows[0]?.calls).toBe(51);

    // Row for row what a clean full rebuild produces.
    const incremental = await rollupDigests(t);
    await rebuildRollups(t.db);
    expect(await rollupDigests(t)).toEqual(incremental);
  });
});

// ---------------------------------------------------------------------------------------

async function flagRows(t: TestDatabase) {
  const r = await sql<{ row: string }>`
    SELECT (rule, dedupe_key, action_type, route, user_id, usage_id, day, observed, expected_low, expected_high, message, details, occurred_at, status)::text AS row
    FROM tokenboard.outlier_flags ORDER BY dedupe_key`.execute(t.db);
  return r.rows.map((x) => x.row);
}

async function flagCount(t: TestDatabase): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM tokenboard.outlier_flags`.execute(t.db);
  return r.rows[0]?.n ?? -1;
}

async function watermark(t: TestDatabase): Promise<string | null> {
  const row = await t.db.selectFrom("settings").select("value").where("key", "=", "outlier_job").executeTakeFirst();
  return (row?.value as { watermark?: string } | undefined)?.watermark ?? null;
}

describe("the outlier job killed mid-run", () => {
  const FIRST_NOW = "2025-01-18T00:00:00.000Z";
  const CRASH_NOW = "2025-02-20T00:00:00.000Z";

  it("keeps its watermark, and the next run's flags equal a clean run's: none doubled, none missing", async () => {
    const t = outlierDb;
    // A completed run over normal history sets the watermark; the planted cases come later.
    await insertUsage(t.db, normalRows());
    await runRollup(t.db);
    expect((await detectOutliers(t.db, { now: new Date(FIRST_NOW) })).skipped).toBe(false);
    expect(await watermark(t)).toBe(FIRST_NOW);
    const flagsBefore = await flagCount(t);
    await insertUsage(t.db, plantedRows());

    // user_spike (the fifth rule) reads user_usage_day_total: locked, the run stops there after
    // out_of_range, override_mismatch, unexpected_route and unregistered_type have written.
    const holder = await lockHolder(t, "LOCK TABLE tokenboard.user_usage_day_total IN ACCESS EXCLUSIVE MODE");
    let child: Child | undefined;
    try {
      child = startJob(t.url, "outliers", CRASH_NOW);
      const backend = await blockedBackend(t, "outliers");
      expect(backend.query).toMatch(/user_usage_day_total/);
      const partial = await flagRows(t);
      expect(partial.length).toBeGreaterThan(flagsBefore);
      expect(partial.some((f) => f.startsWith("(unregistered_type,"))).toBe(true);
      expect(partial.some((f) => f.startsWith("(user_spike,") || f.startsWith("(failure_spike,"))).toBe(false);
      await killMidWork(t, child, backend.pid);
    } finally {
      if (child && child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
      await release(holder);
    }
    // The watermark moves only when a run completes.
    expect(await watermark(t)).toBe(FIRST_NOW);
    // The advisory lock died with the backend: the next run is not skipped.
    const next = await detectOutliers(t.db, { now: new Date(CRASH_NOW) });
    expect(next.skipped).toBe(false);
    expect(next.from).toBe(new Date(new Date(FIRST_NOW).getTime() - 3 * 86_400_000).toISOString());
    expect(await watermark(t)).toBe(CRASH_NOW);
    const repaired = await flagRows(t);

    // A clean run over the same rows, from nothing.
    await sql`DELETE FROM tokenboard.outlier_flags`.execute(t.db);
    await sql`DELETE FROM tokenboard.settings WHERE key = 'outlier_job'`.execute(t.db);
    await detectOutliers(t.db, { full: true, now: new Date(CRASH_NOW) });
    const clean = await flagRows(t);
    expect(clean.length).toBeGreaterThanOrEqual(7);
    expect(new Set(repaired).size).toBe(repaired.length);
    expect(repaired).toEqual(clean);
    // One flag per finding: no two flags for one usage row and rule, nor one day's aggregate.
    const doubled = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM (
        SELECT rule, action_type, route, user_id, usage_id, day FROM tokenboard.outlier_flags
        GROUP BY 1, 2, 3, 4, 5, 6 HAVING count(*) > 1) d`.execute(t.db);
    expect(doubled.rows[0]?.n).toBe(0);
  });
});
