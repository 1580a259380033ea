import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTION_TYPES } from "~/domain/action-types";
import { checkActionTypeDrift } from "~/models/action-type-sync.server";
import { PLANTED_SETTING, generateDemoData } from "../../db/seed/generator";
import type { PlantedCases } from "../../db/seed/usage-rows";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { ADOPTION_SETTING, adoptBillingOnce, type AdoptionResult } from "~/models/billing-adoption.server";

const NOW = new Date("2025-05-20T15:45:00Z");
const OPTIONS = { users: 120, rows: 12_000, days: 30, seed: 99, now: NOW };

let first: TestDatabase;
let second: TestDatabase;
let planted: PlantedCases;
let adoption: AdoptionResult | null;
const progress: [number, number][] = [];

async function indexNames(t: TestDatabase): Promise<string[]> {
  const result = await sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'token_usage' ORDER BY 1`.execute(t.db);
  return result.rows.map((r) => r.indexname);
}

/** One value that changes if any row's id, type or tokens differ. */
async function fingerprint(t: TestDatabase): Promise<string> {
  const result = await sql<{ f: string }>`SELECT md5(string_agg(id::text || action_type || tokens_used || success, ',' ORDER BY id)) AS f FROM token_usage`.execute(t.db);
  return result.rows[0]?.f ?? "";
}

beforeAll(async () => {
  first = await createTestDatabase();
  await generateDemoData(first.url, { ...OPTIONS, onProgress: (done, total) => progress.push([done, total]) });
  const row = await first.db.selectFrom("settings").select("value").where("key", "=", PLANTED_SETTING).executeTakeFirstOrThrow();
  planted = row.value as PlantedCases;
  // A demo start adopts after loading; the test template was prepared (and adopted, empty) before.
  await first.db.deleteFrom("settings").where("key", "=", ADOPTION_SETTING).execute();
  // As of the demo's own "now", so the grants still running then are live.
  adoption = await adoptBillingOnce(first.db, { now: NOW });
}, 120_000);

afterAll(async () => {
  await first?.drop();
  await second?.drop();
});

describe("demo data in PostgreSQL", () => {
  it("loads exactly the requested rows and users, reporting progress up to the total", async () => {
    const usage = await first.db.selectFrom("token_usage").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const users = await first.db.selectFrom("app_users").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    expect(usage.n).toBe(OPTIONS.rows);
    expect(users.n).toBe(OPTIONS.users);
    expect(progress.at(-1)).toEqual([OPTIONS.rows, OPTIONS.rows]);
  });

  it("prices every demo model, and rows without a stored cost get one from pricing", async () => {
    const models = await sql<{ model_used: string; priced: boolean }>`
      SELECT DISTINCT u.model_used, p.model_name IS NOT NULL AS priced
      FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
      WHERE u.action_type NOT IN ('admin_grant', 'admin_deduct')`.execute(first.db);
    expect(models.rows.filter((m) => !m.priced)).toEqual([]);
    const nulls = await sql<{ share: number }>`SELECT avg((calculated_cost_cents IS NULL)::int)::float8 AS share FROM token_usage`.execute(first.db);
    expect(nulls.rows[0]?.share).toBeGreaterThan(0.07);
    expect(nulls.rows[0]?.share).toBeLessThan(0.13);
  });

  it("keeps every row outside its range to the planted ones", async () => {
    const ranged = ACTION_TYPES.filter((t) => t.expectedRange !== null);
    const outside = await sql<{ id: string }>`
      SELECT u.id FROM token_usage u
      JOIN (VALUES ${sql.join(ranged.map((t) => sql`(${t.name}, ${t.expectedRange?.min}::int, ${t.expectedRange?.max}::int)`))}) AS r(action_type, lo, hi)
        ON r.action_type = u.action_type
      WHERE u.tokens_used < r.lo OR u.tokens_used > r.hi`.execute(first.db);
    const plantedIds = [...planted.rangeOutliers.map((o) => o.id), ...planted.fixedCostMismatches.map((o) => o.id)];
    expect(new Set(outside.rows.map((r) => r.id))).toEqual(new Set(plantedIds));
  });

  it("stores the planted rows with the tokens and routes it recorded", async () => {
    const outliers = await first.db.selectFrom("token_usage").select(["id", "tokens_used"]).where("id", "in", planted.rangeOutliers.map((o) => o.id)).execute();
    expect(new Map(outliers.map((o) => [o.id, o.tokens_used]))).toEqual(new Map(planted.rangeOutliers.map((o) => [o.id, o.tokens_used])));
    const wrongRoute = await first.db.selectFrom("token_usage").select(["route", "action_type"]).where("id", "in", planted.wrongRoute.ids).execute();
    expect(wrongRoute).toHaveLength(planted.wrongRoute.ids.length);
    expect(new Set(wrongRoute.map((r) => `${r.action_type} ${r.route}`))).toEqual(new Set([`${planted.wrongRoute.action_type} ${planted.wrongRoute.route}`]));
  });

  it("has the legacy type as drift, by name and count", async () => {
    const report = await checkActionTypeDrift(first.db);
    const rows = report.items.find((i) => i.kind === "rows_unregistered");
    expect(rows?.actionType).toBe("vibrational_analysis");
    expect(rows?.count).toBe(planted.unregistered.count);
  });

  it("has one user whose planted day is far above their daily median", async () => {
    const days = await sql<{ day: string; tokens: number }>`
      SELECT to_char((created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, sum(tokens_used)::bigint AS tokens
      FROM token_usage WHERE user_id = ${planted.userSpike.user_id} GROUP BY 1 ORDER BY 1`.execute(first.db);
    const spike = days.rows.find((d) => d.day === planted.userSpike.day);
    expect(spike?.tokens).toBe(planted.userSpike.dayTokens);
    const others = days.rows.filter((d) => d.day !== planted.userSpike.day).map((d) => d.tokens).sort((a, b) => a - b);
    const median = others[Math.floor(others.length / 2)] as number;
    expect(median).toBeGreaterThan(15_000);
    expect((spike?.tokens ?? 0) / median).toBeGreaterThan(40);
  });

  it("has a failure-rate spike for one type on one day and about 2% failures elsewhere", async () => {
    const rates = await sql<{ spike: boolean; rate: number }>`
      SELECT ((created_at AT TIME ZONE 'UTC')::date = ${planted.failureSpike.day}::date AND action_type = ${planted.failureSpike.action_type}) AS spike,
             avg((NOT success)::int)::float8 AS rate
      FROM token_usage WHERE action_type <> 'vibrational_analysis' GROUP BY 1`.execute(first.db);
    const spike = rates.rows.find((r) => r.spike)?.rate ?? 0;
    const rest = rates.rows.find((r) => !r.spike)?.rate ?? 1;
    expect(spike).toBeGreaterThan(0.25);
    expect(rest).toBeLessThan(0.03);
  });

  it("adopts its billing history into a ledger whose balances equal the sum of entries", async () => {
    expect(adoption?.transactions).toBeGreaterThan(OPTIONS.users);
    expect(adoption?.legacyUsageCopies).toBeGreaterThan(0);
    const check = await sql<{ users: number; mismatched: number }>`
      SELECT count(*)::int AS users, count(*) FILTER (WHERE b.balance <> e.total OR b.balance <> e.last_after)::int AS mismatched
      FROM token_balances b
      JOIN (SELECT user_id, sum(amount) AS total, (array_agg(balance_after ORDER BY id DESC))[1] AS last_after
            FROM ledger_entries GROUP BY user_id) e ON e.user_id = b.user_id`.execute(first.db);
    expect(check.rows[0]?.mismatched).toBe(0);
    const labels = await first.db.selectFrom("ledger_entries").select("actor_label").distinct().execute();
    expect(labels.map((l) => l.actor_label)).toEqual(["adoption"]);
  });

  it("tells a billing story: most balances comfortable, some near zero, a few overdrawn, pools charged to their admin", async () => {
    const shape = await sql<{ users: number; overdrawn: number; near_zero: number; pooled: number; purchases: number; eur: number; expiries: number }>`
      SELECT (SELECT count(*)::int FROM token_balances) AS users,
             (SELECT count(*)::int FROM token_balances WHERE balance < 0) AS overdrawn,
             (SELECT count(*)::int FROM token_balances b WHERE b.balance >= 0 AND b.balance < 0.1 * (
                SELECT -sum(amount) FROM ledger_entries l WHERE l.user_id = b.user_id AND l.kind = 'usage')) AS near_zero,
             (SELECT count(DISTINCT consumer_id)::int FROM ledger_entries WHERE kind = 'usage' AND consumer_id <> user_id) AS pooled,
             (SELECT count(*)::int FROM ledger_entries WHERE kind = 'purchase' AND amount_paid_cents > 0) AS purchases,
             (SELECT count(*)::int FROM ledger_entries WHERE kind = 'purchase' AND currency = 'EUR') AS eur,
             (SELECT count(*)::int FROM ledger_entries WHERE kind = 'expiry') AS expiries`.execute(first.db);
    const s = shape.rows[0]!;
    expect(s.overdrawn).toBeGreaterThan(0);
    expect(s.overdrawn).toBeLessThan(s.users * 0.2);
    expect(s.near_zero).toBeGreaterThan(0);
    expect(s.users - s.overdrawn - s.near_zero).toBeGreaterThan(s.users / 2);
    expect(s.pooled).toBeGreaterThanOrEqual(8);
    expect(s.purchases).toBeGreaterThan(0);
    expect(s.eur).toBeGreaterThan(0);
    expect(s.expiries).toBeGreaterThan(0);
  });

  it("makes the same rows from the same seed, also when indexes are dropped and rebuilt for the load", async () => {
    second = await createTestDatabase({ setAppUrl: false });
    const before = await indexNames(second);
    await generateDemoData(second.url, { ...OPTIONS, dropIndexes: true });
    expect(await indexNames(second)).toEqual(before);
    expect(await fingerprint(second)).toBe(await fingerprint(first));
  });

  it("refuses invalid options with a message naming the option", async () => {
    await expect(generateDemoData(first.url, { ...OPTIONS, days: 3 })).rejects.toThrow(/days/);
  });
});
