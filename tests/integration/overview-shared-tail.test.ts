import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeRange, type DateRange } from "../../app/domain/period";
import { costCentsSql } from "../../app/models/cost.server";
import { runRollup, sharedQueueTail, usageFacts, userFacts } from "../../app/models/rollup.server";
import { overviewUsage } from "../../app/routes/overview/queries.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { insertTestPricing, insertUsage, randomUsageRows, seededRandom } from "../support/usage-rows";

/**
 * The overview reads the queue tail once for its totals, active users and days
 * (sharedQueueTail). With part of the data rolled up and part still queued — inserts, and the
 * minus-plus pairs of updates and deletes, one user's calls all deleted — every figure must equal
 * raw SQL over token_usage.
 */
let t: TestDatabase;
const random = seededRandom(20251130);

beforeAll(async () => {
  t = await createTestDatabase();
  await insertTestPricing(t.db);
  await insertUsage(t.db, randomUsageRows(random, 2_000, new Date("2025-03-01T00:00:00Z"), new Date("2025-04-01T00:00:00Z")));
  await runRollup(t.db);
  // Queued, not rolled up: new rows, an update (minus old, plus new) and a delete (minus).
  await insertUsage(t.db, randomUsageRows(random, 1_500, new Date("2025-03-01T00:00:00Z"), new Date("2025-04-01T00:00:00Z")));
  await sql`UPDATE token_usage SET tokens_used = tokens_used + 11, success = NOT success WHERE tokens_used % 7 = 0`.execute(t.db);
  await sql`DELETE FROM token_usage WHERE tokens_used % 13 = 1`.execute(t.db);
  // A user whose rolled-up calls are all deleted, the deletes still queued: a month row's plus
  // and the tail's minus sum to no calls, so the user is not active.
  await sql`DELETE FROM token_usage WHERE user_id = (SELECT user_id FROM tokenboard.user_usage_day ORDER BY user_id LIMIT 1)`.execute(t.db);
});
afterAll(async () => t.drop());

async function rawOverview(range: DateRange, actionType?: string) {
  const typeWhere = actionType ? sql`AND u.action_type = ${actionType}` : sql``;
  const totals = await sql<{ tokens: number; calls: number; failures: number; cost: number; users: number }>`
    SELECT COALESCE(sum(u.tokens_used), 0)::bigint AS tokens, count(*)::bigint AS calls, count(*) FILTER (WHERE NOT u.success)::bigint AS failures,
           round(COALESCE(sum(${costCentsSql}), 0), 4)::float8 AS cost, count(DISTINCT u.user_id)::bigint AS users
    FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end} ${typeWhere}`.execute(t.db);
  const perDay = await sql<{ day: string; action_type: string; tokens: number; calls: number }>`
    SELECT to_char((u.created_at AT TIME ZONE ${range.tz})::date, 'YYYY-MM-DD') AS day, u.action_type,
           sum(u.tokens_used)::bigint AS tokens, count(*)::bigint AS calls
    FROM token_usage u WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end} ${typeWhere}
    GROUP BY 1, 2 ORDER BY 1, 2`.execute(t.db);
  return { totals: totals.rows[0], perDay: perDay.rows };
}

const CASES: { name: string; range: DateRange; actionType?: string }[] = [
  { name: "the whole month, UTC", range: makeRange("2025-03-01", "2025-03-31", "UTC") },
  { name: "partial edge days read as day minus raw rows (Asia/Kolkata)", range: makeRange("2025-03-03", "2025-03-20", "Asia/Kolkata") },
  { name: "partial edge days read as raw rows (America/Los_Angeles)", range: makeRange("2025-03-05", "2025-03-12", "America/Los_Angeles") },
  { name: "one day, no whole UTC day inside (Pacific/Chatham)", range: makeRange("2025-03-15", "2025-03-15", "Pacific/Chatham") },
  { name: "one action type", range: makeRange("2025-03-02", "2025-03-28", "Europe/Berlin"), actionType: "chat_conversation" },
];

describe("the overview with rows both rolled up and queued", () => {
  it("has a queue tail with inserts, updates and deletes to read", async () => {
    const queued = await sql<{ plus: number; minus: number }>`
      SELECT count(*) FILTER (WHERE sign > 0)::bigint AS plus, count(*) FILTER (WHERE sign < 0)::bigint AS minus FROM tokenboard.usage_rollup_queue`.execute(t.db);
    expect(queued.rows[0]?.plus).toBeGreaterThan(1_500);
    expect(queued.rows[0]?.minus).toBeGreaterThan(500);
    const gone = await sql<{ calls: number; queued: number }>`
      SELECT (SELECT sum(calls) FROM tokenboard.user_usage_day d WHERE d.user_id = q.user_id)::bigint AS calls, sum(q.sign)::bigint AS queued
      FROM tokenboard.usage_rollup_queue q
      WHERE q.user_id = (SELECT user_id FROM tokenboard.user_usage_day ORDER BY user_id LIMIT 1) GROUP BY q.user_id`.execute(t.db);
    expect(gone.rows[0]?.calls).toBeGreaterThan(0);
    expect(gone.rows[0]?.queued).toBe(-(gone.rows[0]?.calls ?? 0));
  });

  for (const c of CASES) {
    it(`equals raw SQL: ${c.name}`, async () => {
      const { totals, perDay } = await overviewUsage(t.db, c.range, { actionType: c.actionType });
      const raw = await rawOverview(c.range, c.actionType);
      expect(raw.totals?.calls).toBeGreaterThan(0);
      expect({ tokens: totals.tokens, calls: totals.calls, failures: totals.failures, users: totals.activeUsers }).toEqual({
        tokens: raw.totals?.tokens, calls: raw.totals?.calls, failures: raw.totals?.failures, users: raw.totals?.users,
      });
      expect(totals.costCents).toBeCloseTo(raw.totals?.cost ?? NaN, 4);
      expect(perDay).toEqual(raw.perDay);
    });
  }

  it("refuses a shared tail made for another range", () => {
    const tail = sharedQueueTail(makeRange("2025-03-01", "2025-03-31", "UTC"));
    expect(() => usageFacts(makeRange("2025-03-01", "2025-03-30", "UTC"), { tail })).toThrow(/range it was made for/);
  });

  it("a tail made for one action type makes usage facts that type's, rollups included", async () => {
    const range = makeRange("2025-03-02", "2025-03-28", "Europe/Berlin");
    const tail = sharedQueueTail(range, "chat_conversation");
    const r = await sql<{ calls: number; tokens: number; types: string[] }>`
      WITH ${tail.cte}
      SELECT sum(calls)::bigint AS calls, sum(tokens)::bigint AS tokens, array_agg(DISTINCT action_type) AS types FROM (${usageFacts(range, { tail })}) f`.execute(t.db);
    const raw = await rawOverview(range, "chat_conversation");
    expect(r.rows[0]).toEqual({ calls: raw.totals?.calls, tokens: raw.totals?.tokens, types: ["chat_conversation"] });
  });

  it("refuses a shared tail for per-user reads of another action type, or by type without one", () => {
    const range = makeRange("2025-03-01", "2025-03-31", "UTC");
    const chat = sharedQueueTail(range, "chat_conversation");
    expect(() => userFacts(range, { tail: chat })).toThrow(/action type it was made for/);
    expect(() => userFacts(range, { tail: chat, actionType: "image_generation" })).toThrow(/action type it was made for/);
    expect(() => userFacts(range, { tail: sharedQueueTail(range), actionType: "chat_conversation" })).toThrow(/action type it was made for/);
    expect(() => userFacts(range, { tail: sharedQueueTail(range), byType: true })).toThrow(/no per-user rows by action type/);
    expect(() => userFacts(range, { tail: chat, actionType: "chat_conversation" })).not.toThrow();
  });
});
