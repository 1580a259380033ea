import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMigrator, migrateToLatest } from "../../db/migrate";
import * as m0017 from "../../db/migrations/0017_queue_priced_rows";
import type { Database, NewTokenUsage } from "../../db/types";
import { costCentsSql } from "../../app/models/cost.server";
import { runRollup, usageFacts } from "../../app/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { TEST_USERS, insertTestPricing, insertUsage } from "../support/usage-rows";

/**
 * The rollup queue's trigger prices every row it queues (migration 0017), so the job and every
 * page read of the queue's tail read a cost instead of pricing each row again.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase({ setAppUrl: false });
  await insertTestPricing(t.db);
});
afterAll(async () => t.drop());

const AT = new Date("2025-06-10T12:00:00Z");
const DAY = { start: new Date("2025-06-10T00:00:00Z"), end: new Date("2025-06-11T00:00:00Z") };

/** One row of each way a cost comes about, and the cents each must cost (test prices: usage-rows.ts). */
const CASES: { row: Partial<NewTokenUsage>; cents: number }[] = [
  // (1,000 × $2.50 + 500 × $10) per 1M tokens = $0.0075
  { row: { model_used: "gpt-4o", input_tokens: 1_000, output_tokens: 500 }, cents: 0.75 },
  // per image: $0.04, audio_seconds below 1 counts as one unit
  { row: { model_used: "dall-e-3", input_tokens: 0, output_tokens: 0 }, cents: 4 },
  // the app's own cost wins over any price
  { row: { model_used: "gpt-4o", input_tokens: 1_000, output_tokens: 500, calculated_cost_cents: 12.3456 }, cents: 12.3456 },
  // a model without a price costs nothing
  { row: { model_used: "unpriced-model", input_tokens: 1_000, output_tokens: 500 }, cents: 0 },
];

const rowsOf = (marker: string, at = AT): NewTokenUsage[] =>
  CASES.map(({ row }, i) => ({
    user_id: TEST_USERS[i] as string,
    action_type: "chat_conversation",
    tokens_used: 1_500,
    success: true,
    route: marker,
    created_at: at,
    model_used: "gpt-4o",
    ...row,
  }));

async function queuedCents(db: Kysely<Database>, marker: string): Promise<number[]> {
  const r = await sql<{ cents: number }>`
    SELECT cost_cents::float8 AS cents FROM tokenboard.usage_rollup_queue WHERE route = ${marker} ORDER BY user_id`.execute(db);
  return r.rows.map((row) => row.cents);
}

async function dayCost(db: Kysely<Database>): Promise<number> {
  const r = await sql<{ cost: number }>`SELECT round(COALESCE(sum(cost_cents), 0), 4)::float8 AS cost FROM (${usageFacts(DAY)}) f`.execute(db);
  return r.rows[0]?.cost ?? Number.NaN;
}

describe("rows are priced once, when the trigger queues them", () => {
  it("with the formula every reader of raw rows uses", async () => {
    await insertUsage(t.db, rowsOf("/priced"));
    expect(await queuedCents(t.db, "/priced")).toEqual(CASES.map((c) => c.cents));
    const raw = await sql<{ cents: number }>`
      SELECT (${costCentsSql})::float8 AS cents FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
      WHERE u.route = '/priced' ORDER BY u.user_id`.execute(t.db);
    expect(raw.rows.map((row) => row.cents)).toEqual(CASES.map((c) => c.cents));
  });

  it("a price changed after a row was queued leaves its cost as queued, in the tail and once rolled up", async () => {
    const before = await dayCost(t.db);
    expect(before).toBeCloseTo(17.0956, 4);
    await sql`UPDATE ai_model_pricing SET input_price_per_1m = 5, output_price_per_1m = 20 WHERE model_name = 'gpt-4o'`.execute(t.db);
    try {
      expect(await dayCost(t.db)).toBe(before);
      await runRollup(t.db);
      expect(await dayCost(t.db)).toBe(before);
      // A row stored after the change pays the new price: 1,000 × $5 + 500 × $20 per 1M = 1.5 cents.
      await insertUsage(t.db, [rowsOf("/after")[0] as NewTokenUsage]);
      expect(await queuedCents(t.db, "/after")).toEqual([1.5]);
      expect(await dayCost(t.db)).toBeCloseTo(before + 1.5, 4);
    } finally {
      await sql`UPDATE ai_model_pricing SET input_price_per_1m = 2.5, output_price_per_1m = 10 WHERE model_name = 'gpt-4o'`.execute(t.db);
    }
  });

  it("a deleted row is queued with its cost negated", async () => {
    await runRollup(t.db);
    const before = await dayCost(t.db);
    await sql`DELETE FROM token_usage WHERE route = '/after'`.execute(t.db);
    const r = await sql<{ sign: number; cents: number }>`SELECT sign, cost_cents::float8 AS cents FROM tokenboard.usage_rollup_queue WHERE route = '/after'`.execute(t.db);
    expect(r.rows).toEqual([{ sign: -1, cents: 0.75 }]);
    // Priced at the current price again (0.75), not the 1.5 it was queued at: a pricing change
    // reprices no history (rollup --rebuild does).
    expect(await dayCost(t.db)).toBeCloseTo(before - 0.75, 4);
  });

  it("the planner inlines the cost function (it would otherwise be called once per raw row read)", async () => {
    const r = await sql<{ "QUERY PLAN": string }>`
      EXPLAIN (VERBOSE) SELECT ${costCentsSql} FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used`.execute(t.db);
    const plan = r.rows.map((row) => row["QUERY PLAN"]).join("\n");
    expect(plan).toMatch(/COALESCE\(u\.calculated_cost_cents/);
    expect(plan).not.toMatch(/usage_cost_cents/);
  });
});

describe("migration 0017 on a queue that holds rows", () => {
  /** Rolls back 0017 and the migrations after it; answers their names. */
  async function before0017(db: Kysely<Database>): Promise<string[]> {
    const { error, results } = await createMigrator(db).migrateTo("0016_per_user_rollups_hot_updates");
    if (error) throw error;
    return (results ?? []).map((r) => r.migrationName);
  }
  let m: TestDatabase;
  beforeAll(async () => {
    m = await createTestDatabase({ setAppUrl: false });
    await insertTestPricing(m.db);
  });
  afterAll(async () => m.drop());

  it("prices the rows queued before it, and its down keeps their cost for the old job", async () => {
    expect(await before0017(m.db)).toContain("0017_queue_priced_rows");
    await insertUsage(m.db, rowsOf("/old-trigger"));
    const old = await sql<{ n: number }>`SELECT count(*)::int AS n FROM tokenboard.usage_rollup_queue WHERE route = '/old-trigger'`.execute(m.db);
    expect(old.rows[0]?.n).toBe(CASES.length);

    expect(await migrateToLatest(m.db)).toContain("0017_queue_priced_rows");
    expect(await queuedCents(m.db, "/old-trigger")).toEqual(CASES.map((c) => c.cents));

    await before0017(m.db);
    const kept = await sql<{ cents: number }>`
      SELECT calculated_cost_cents::float8 AS cents FROM tokenboard.usage_rollup_queue WHERE route = '/old-trigger' ORDER BY user_id`.execute(m.db);
    expect(kept.rows.map((row) => row.cents)).toEqual(CASES.map((c) => c.cents));
    await migrateToLatest(m.db);
    expect(await queuedCents(m.db, "/old-trigger")).toEqual(CASES.map((c) => c.cents));
  });

  it("an app insert that arrives while it runs waits, then is queued by the new trigger, priced", async () => {
    expect(await before0017(m.db)).toContain("0017_queue_priced_rows");
    let insert: Promise<unknown> | undefined;
    await m.db.transaction().execute(async (trx) => {
      await m0017.up(trx as unknown as Kysely<unknown>);
      // The app writes token_usage on its own connection while the migration is not committed yet.
      insert = insertUsage(m.db, rowsOf("/during-migration")).then(
        () => "stored",
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
    });
    expect(await insert).toBe("stored");
    expect(await queuedCents(m.db, "/during-migration")).toEqual(CASES.map((c) => c.cents));
  });
});
