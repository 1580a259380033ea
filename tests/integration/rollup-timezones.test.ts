import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeRange } from "../../app/domain/period";
import { fixedOffsetMinutes, runRollup } from "../../app/models/rollup.server";
import { overviewUsage } from "../../app/routes/overview/queries.server";
import { loader as overviewLoader } from "../../app/routes/overview/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";
import { TEST_USERS } from "../support/usage-rows";

let t: TestDatabase;
let analyst: TestStaff;

/** One row every 7 minutes (never aligned with 15-minute buckets or hours) across each window. */
const WINDOWS: [string, string][] = [
  ["2025-03-07T00:00:00Z", "2025-04-08T00:00:00Z"],
  ["2025-09-25T00:00:00Z", "2025-10-07T00:00:00Z"],
  ["2025-10-24T00:00:00Z", "2025-11-04T00:00:00Z"],
];

beforeAll(async () => {
  t = await createTestDatabase();
  analyst = await staffSession(t.db, "analyst");
  for (const [from, to] of WINDOWS) {
    await sql`
      INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, created_at)
      SELECT (ARRAY[${TEST_USERS[0]}::uuid, ${TEST_USERS[1]}::uuid, ${TEST_USERS[2]}::uuid])[1 + (n % 3)],
             (ARRAY['chat_conversation', 'assessment_scoring'])[1 + (n % 2)], 'gpt-4o', 1 + (n * 37) % 1000,
             ${from}::timestamptz + n * interval '7 minutes'
      FROM generate_series(0, floor(extract(epoch FROM ${to}::timestamptz - ${from}::timestamptz) / 420)::int - 1) AS n`.execute(t.db);
  }
});
afterAll(async () => t.drop());

/** Local days around each zone's DST changes (or just a window for zones without DST). */
const CASES: { tz: string; from: string; to: string }[] = [
  { tz: "Asia/Kolkata", from: "2025-03-08", to: "2025-03-12" },
  { tz: "Australia/Adelaide", from: "2025-04-04", to: "2025-04-07" },
  { tz: "Australia/Adelaide", from: "2025-10-03", to: "2025-10-06" },
  { tz: "Pacific/Chatham", from: "2025-04-04", to: "2025-04-07" },
  { tz: "Pacific/Chatham", from: "2025-09-26", to: "2025-09-29" },
  { tz: "America/New_York", from: "2025-03-08", to: "2025-03-10" },
  { tz: "America/New_York", from: "2025-11-01", to: "2025-11-03" },
  { tz: "Europe/Berlin", from: "2025-03-29", to: "2025-03-31" },
  { tz: "Europe/Berlin", from: "2025-10-25", to: "2025-10-27" },
  { tz: "UTC", from: "2025-03-10", to: "2025-03-20" },
];

async function rawDays(tz: string, from: string, to: string) {
  const result = await sql<{ day: string; action_type: string; tokens: number; calls: number }>`
    SELECT to_char((created_at AT TIME ZONE ${tz})::date, 'YYYY-MM-DD') AS day, action_type,
           sum(tokens_used)::bigint AS tokens, count(*)::bigint AS calls
    FROM token_usage
    WHERE (created_at AT TIME ZONE ${tz})::date BETWEEN ${from}::date AND ${to}::date
    GROUP BY 1, 2 ORDER BY 1, 2`.execute(t.db);
  return result.rows;
}

describe("local days in any zone", () => {
  it("day totals from the queue tail equal raw (created_at AT TIME ZONE tz)::date totals", async () => {
    for (const c of CASES) {
      expect((await overviewUsage(t.db, makeRange(c.from, c.to, c.tz))).perDay, `${c.tz} ${c.from}`).toEqual(await rawDays(c.tz, c.from, c.to));
    }
  });

  it("day totals from the rollups equal raw totals, including DST days of 23 and 25 hours", async () => {
    await runRollup(t.db);
    for (const c of CASES) {
      const { perDay, totals } = await overviewUsage(t.db, makeRange(c.from, c.to, c.tz));
      expect(perDay, `${c.tz} ${c.from}`).toEqual(await rawDays(c.tz, c.from, c.to));
      expect(totals.tokens).toBe(perDay.reduce((s, r) => s + r.tokens, 0));
    }
  });

  it("the overview loader's KPIs equal SELECT sum(tokens_used) for a Chatham range", async () => {
    const data = (await overviewLoader({ request: requestAs(analyst, "/?from=2025-03-08&to=2025-04-05&tz=Pacific/Chatham"), params: {}, context: {} } as never)) as {
      totals: { tokens: number; calls: number; activeUsers: number };
    };
    const range = makeRange("2025-03-08", "2025-04-05", "Pacific/Chatham");
    const raw = await sql<{ tokens: number; calls: number; users: number }>`
      SELECT sum(tokens_used)::bigint AS tokens, count(*)::bigint AS calls, count(DISTINCT user_id)::bigint AS users
      FROM token_usage WHERE created_at >= ${range.start} AND created_at < ${range.end}`.execute(t.db);
    expect(data.totals.tokens).toBe(raw.rows[0]?.tokens);
    expect(data.totals.calls).toBe(raw.rows[0]?.calls);
    expect(data.totals.activeUsers).toBe(raw.rows[0]?.users);
  });

  it("the overview answers 400 naming the field for an unknown zone", async () => {
    await expect(overviewLoader({ request: requestAs(analyst, "/?tz=Mars/Base"), params: {}, context: {} } as never)).rejects.toMatchObject({ init: { status: 400 } });
  });
});

describe("fixedOffsetMinutes", () => {
  it("gives the zone's offset when it keeps one over the range, and null across a DST change", () => {
    expect(fixedOffsetMinutes("Asia/Kolkata", makeRange("2024-03-01", "2024-03-31", "Asia/Kolkata"))).toBe(330);
    expect(fixedOffsetMinutes("UTC", makeRange("2024-03-01", "2024-03-31", "UTC"))).toBe(0);
    expect(fixedOffsetMinutes("America/New_York", makeRange("2024-03-01", "2024-03-09", "America/New_York"))).toBe(-300);
    expect(fixedOffsetMinutes("America/New_York", makeRange("2024-03-01", "2024-03-10", "America/New_York"))).toBeNull();
    expect(fixedOffsetMinutes("Pacific/Chatham", makeRange("2024-09-01", "2024-09-30", "Pacific/Chatham"))).toBeNull();
  });
});
