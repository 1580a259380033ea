import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb } from "../../db/database";
import { USER_ROLLUP_TABLES, rebuildRollups, rollupJob, runRollup, usageFacts, userActionTotals, histogramFacts } from "../../app/models/rollup.server";
import { costCentsSql } from "../../app/models/cost.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { TEST_USERS, insertTestPricing, insertUsage, randomUsageRows, seededRandom } from "../support/usage-rows";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await insertTestPricing(t.db);
});
afterAll(async () => t.drop());

const FROM = new Date("2025-03-01T00:00:00Z");
const TO = new Date("2025-04-01T00:00:00Z");
const WHOLE = { start: FROM, end: TO };

interface Totals {
  calls: number;
  tokens: number;
  failures: number;
  cost: number;
}

async function rawTotals(start: Date, end: Date): Promise<Totals> {
  const r = await sql<Totals>`
    SELECT count(*)::bigint AS calls, COALESCE(sum(u.tokens_used), 0)::bigint AS tokens,
           count(*) FILTER (WHERE NOT u.success)::bigint AS failures, round(COALESCE(sum(${costCentsSql}), 0), 4)::float8 AS cost
    FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE u.created_at >= ${start} AND u.created_at < ${end}`.execute(t.db);
  return r.rows[0] as Totals;
}

async function rollupTotals(start: Date, end: Date): Promise<Totals> {
  const r = await sql<Totals>`
    SELECT COALESCE(sum(calls), 0)::bigint AS calls, COALESCE(sum(tokens), 0)::bigint AS tokens,
           COALESCE(sum(failures), 0)::bigint AS failures, round(COALESCE(sum(cost_cents), 0), 4)::float8 AS cost
    FROM (${usageFacts({ start, end })}) f`.execute(t.db);
  return r.rows[0] as Totals;
}

async function queueLength(): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM tokenboard.usage_rollup_queue`.execute(t.db);
  return r.rows[0]?.n ?? -1;
}

const random = seededRandom(20250301);

describe("incremental rollups", () => {
  it("equal raw SQL totals before the job runs, thanks to the queue tail", async () => {
    await insertUsage(t.db, randomUsageRows(random, 3_000, FROM, TO));
    expect(await queueLength()).toBe(3_000);
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
  });

  it("consume the whole queue and still equal raw totals, for odd sub-ranges too", async () => {
    const run = await runRollup(t.db, { batchSize: 700 });
    expect(run.rows).toBe(3_000);
    expect(run.batches).toBe(5);
    expect(await queueLength()).toBe(0);
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
    const start = new Date("2025-03-04T05:30:00Z");
    const end = new Date("2025-03-19T18:45:00Z");
    expect(await rollupTotals(start, end)).toEqual(await rawTotals(start, end));
  });

  it("count late rows (created days ago) once, and a re-run adds nothing", async () => {
    await insertUsage(t.db, randomUsageRows(random, 400, new Date("2025-03-02T00:00:00Z"), new Date("2025-03-03T00:00:00Z")));
    expect((await runRollup(t.db)).rows).toBe(400);
    expect((await runRollup(t.db)).rows).toBe(0);
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
  });

  it("follow updates and deletes of raw rows", async () => {
    await sql`UPDATE token_usage SET tokens_used = tokens_used + 7, success = NOT success WHERE action_type = 'chat_conversation'`.execute(t.db);
    await sql`DELETE FROM token_usage WHERE action_type = 'admin_grant' AND created_at < '2025-03-10'`.execute(t.db);
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
    await runRollup(t.db);
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
  });

  it("stay exact while several connections insert during repeated job runs", async () => {
    const writers = Array.from({ length: 4 }, (_, w) => {
      const handle = createDb(t.url, 1);
      const rnd = seededRandom(100 + w);
      return (async () => {
        for (let i = 0; i < 10; i++) await insertUsage(handle.db, randomUsageRows(rnd, 100, FROM, TO));
        await handle.db.destroy();
      })();
    });
    const jobs = (async () => {
      for (let i = 0; i < 15; i++) await runRollup(t.db, { batchSize: 150 });
    })();
    const second = createDb(t.url, 2);
    const concurrentJob = (async () => {
      for (let i = 0; i < 15; i++) await runRollup(second.db, { batchSize: 150 });
    })();
    await Promise.all([...writers, jobs, concurrentJob]);
    await second.db.destroy();
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
    await runRollup(t.db);
    expect(await queueLength()).toBe(0);
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
  });

  it("a rebuild during ingest neither loses nor doubles rows", async () => {
    const writer = createDb(t.url, 1);
    const rnd = seededRandom(7);
    const ingest = (async () => {
      for (let i = 0; i < 10; i++) await insertUsage(writer.db, randomUsageRows(rnd, 100, FROM, TO));
    })();
    await rebuildRollups(t.db);
    await ingest;
    await writer.db.destroy();
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
    await runRollup(t.db);
    expect(await rollupTotals(FROM, TO)).toEqual(await rawTotals(FROM, TO));
  });

  it("per-user totals equal raw per-user totals for a range with partial days", async () => {
    await insertUsage(t.db, randomUsageRows(random, 200, FROM, TO));
    const range = { start: new Date("2025-03-05T18:30:00Z"), end: new Date("2025-03-20T18:30:00Z") };
    const fromRollups = await userActionTotals(t.db, range);
    const raw = await sql<{ user_id: string; action_type: string; calls: number; tokens: number }>`
      SELECT user_id, action_type, count(*)::bigint AS calls, sum(tokens_used)::bigint AS tokens FROM token_usage
      WHERE created_at >= ${range.start} AND created_at < ${range.end} GROUP BY 1, 2 ORDER BY 1, 2`.execute(t.db);
    expect(fromRollups.map(({ user_id, action_type, calls, tokens }) => ({ user_id, action_type, calls, tokens }))).toEqual(raw.rows);
  });

  it("per-user day totals agree with the per-user, per-type days", async () => {
    await runRollup(t.db);
    const diff = await sql<{ n: number }>`
      SELECT count(*)::bigint AS n FROM (
        SELECT day, user_id, sum(calls) AS calls, sum(tokens) AS tokens FROM tokenboard.user_usage_day GROUP BY 1, 2
        EXCEPT SELECT day, user_id, calls, tokens FROM tokenboard.user_usage_day_total) d`.execute(t.db);
    expect(diff.rows[0]?.n).toBe(0);
  });

  it("histograms count every call once and max is the raw max", async () => {
    await runRollup(t.db);
    const hist = await sql<{ calls: number }>`SELECT sum(calls)::bigint AS calls FROM (${histogramFacts(WHOLE)}) h`.execute(t.db);
    const raw = await rawTotals(FROM, TO);
    expect(hist.rows[0]?.calls).toBe(raw.calls);
    const max = await sql<{ a: number; b: number }>`
      SELECT (SELECT max(max_tokens) FROM (${usageFacts(WHOLE)}) f WHERE action_type = 'assessment_scoring') AS a,
             (SELECT max(tokens_used) FROM token_usage WHERE action_type = 'assessment_scoring') AS b`.execute(t.db);
    expect(max.rows[0]?.a).toBe(max.rows[0]?.b);
  });
});

describe("the rollup job's care of its queue", () => {
  async function queueVacuums(): Promise<number> {
    const r = await sql<{ n: number }>`SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relid = 'tokenboard.usage_rollup_queue'::regclass`.execute(t.db);
    return Number(r.rows[0]?.n ?? -1);
  }
  const S = new Date("2025-05-01T00:00:00Z");
  const E = new Date("2025-05-02T00:00:00Z");

  it("vacuums the queue once it has consumed the given number of rows, counting across runs", async () => {
    await runRollup(t.db);
    const before = await queueVacuums();
    await insertUsage(t.db, randomUsageRows(random, 30, S, E));
    // Charging off: the summary then names the rows and the vacuum only (charging adds "n charge entries").
    const first = await rollupJob(t.db, { queueVacuumRows: 50, charge: false });
    expect(first.summary).toBe("30 rows in 1 batch(es)");
    expect(await queueVacuums()).toBe(before);
    await insertUsage(t.db, randomUsageRows(random, 30, S, E));
    const second = await rollupJob(t.db, { queueVacuumRows: 50, charge: false });
    expect(second.summary).toMatch(/^30 rows in 1 batch\(es\); queue vacuumed \(\d+ ms\)$/);
    expect(await queueVacuums()).toBe(before + 1);
    expect(await queueLength()).toBe(0);
    expect(await rollupTotals(S, E)).toEqual(await rawTotals(S, E));
  });

  it("updates the per-user rollups in place: heap-only (HOT) updates, no new index entries (migration 0016)", async () => {
    // A database of its own: table statistics reach pg_stat_user_tables late (when a backend
    // goes idle), so other tests' updates would still be arriving here.
    const own = await createTestDatabase();
    try {
      const tables = USER_ROLLUP_TABLES;
      const counts = async () => {
        const r = await sql<{ updated: number; hot: number }>`
          SELECT sum(n_tup_upd)::int AS updated, sum(n_tup_hot_upd)::int AS hot FROM pg_stat_user_tables
          WHERE schemaname = 'tokenboard' AND relname = ANY(${tables})`.execute(own.db);
        return r.rows[0] as { updated: number; hot: number };
      };
      const at = new Date("2025-07-15T10:00:00Z").getTime();
      const call = (i: number) => ({ user_id: TEST_USERS[0]!, action_type: "chat_conversation", model_used: "gpt-4o", route: null, tokens_used: 100 + i, success: true, created_at: new Date(at + i * 1000) });
      const runs = 5;
      await own.db.connection().execute(async (conn) => {
        for (let i = 0; i <= runs; i++) {
          await insertUsage(conn, [call(i)]);
          await runRollup(conn); // the first run inserts the user's rows, the others update them
        }
        // This backend's statistics reach pg_stat_user_tables when it next goes idle.
        await sql`SELECT pg_stat_force_next_flush()`.execute(conn);
      });
      await expect.poll(async () => (await counts()).updated, { timeout: 5_000 }).toBe(runs * tables.length);
      expect((await counts()).hot).toBe(runs * tables.length);
    } finally {
      await own.drop();
    }
  });

  it("never plans a parallel scan of the queue (migration 0015)", async () => {
    const r = await sql<{ options: string[] | null }>`SELECT reloptions AS options FROM pg_class WHERE oid = 'tokenboard.usage_rollup_queue'::regclass`.execute(t.db);
    expect(r.rows[0]?.options).toContain("parallel_workers=0");
  });
});
