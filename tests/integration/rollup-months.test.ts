import { sql, type Kysely } from "kysely";
import { DateTime } from "luxon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUserMonthDays, coverDays, rebuildRollups, runRollup, userFacts, userRangeSplit, type InstantRange } from "../../app/models/rollup.server";
import { costCentsSql } from "../../app/models/cost.server";
import { migrateDown, migrateToLatest } from "../../db/migrate";
import type { Database } from "../../db/types";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { insertTestPricing, insertUsage, randomUsageRows, seededRandom } from "../support/usage-rows";

/**
 * Month rollups (migration 0012): per-user reads over whole UTC days use a month's row minus
 * the days it leaves out. Whatever the range, the per-user sums must equal raw SQL's.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await insertTestPricing(t.db);
});
afterAll(async () => t.drop());

const FROM = new Date("2025-01-20T00:00:00Z");
const TO = new Date("2025-04-12T00:00:00Z");
const random = seededRandom(20250120);

interface UserSums {
  user_id: string;
  action_type?: string;
  calls: number;
  failures: number;
  tokens: number;
  cost: number;
}

async function fromFacts(range: InstantRange, options: { byType?: boolean; actionType?: string } = {}, db: Kysely<Database> = t.db): Promise<UserSums[]> {
  const byType = options.byType || options.actionType !== undefined;
  const r = await sql<UserSums>`
    SELECT user_id, ${byType ? sql`action_type, ` : sql``}sum(calls)::bigint AS calls, sum(failures)::bigint AS failures,
           sum(tokens)::bigint AS tokens, round(COALESCE(sum(cost_cents), 0), 4)::float8 AS cost
    FROM (${userFacts(range, options)}) f
    GROUP BY user_id${byType ? sql`, action_type` : sql``} HAVING sum(calls) > 0
    ORDER BY 1${byType ? sql`, 2` : sql``}`.execute(db);
  return r.rows;
}

async function fromRaw(range: InstantRange, options: { byType?: boolean; actionType?: string } = {}, db: Kysely<Database> = t.db): Promise<UserSums[]> {
  const byType = options.byType || options.actionType !== undefined;
  const r = await sql<UserSums>`
    SELECT u.user_id, ${byType ? sql`u.action_type, ` : sql``}count(*)::bigint AS calls, count(*) FILTER (WHERE NOT u.success)::bigint AS failures,
           sum(u.tokens_used)::bigint AS tokens, round(COALESCE(sum(${costCentsSql}), 0), 4)::float8 AS cost
    FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end}
      ${options.actionType ? sql`AND u.action_type = ${options.actionType}` : sql``}
    GROUP BY 1${byType ? sql`, 2` : sql``} ORDER BY 1${byType ? sql`, 2` : sql``}`.execute(db);
  return r.rows;
}

/** Per-user sums from userFacts equal raw SQL's for `range`, with and without types and for one type. */
async function expectFactsEqualRaw(range: InstantRange, db: Kysely<Database> = t.db, label = ""): Promise<void> {
  expect(await fromFacts(range, {}, db), label).toEqual(await fromRaw(range, {}, db));
  expect(await fromFacts(range, { byType: true }, db), label).toEqual(await fromRaw(range, { byType: true }, db));
  expect(await fromFacts(range, { actionType: "chat_conversation" }, db), label).toEqual(await fromRaw(range, { actionType: "chat_conversation" }, db));
}

/**
 * Month rollup rows that are not the sums of their day rows before `openFrom` (every day when
 * null), counted both ways (a month row too many, or one missing or different): 0 when the month
 * rollups hold exactly those days.
 */
async function monthsOffDays(db: Kysely<Database>, openFrom: string | null): Promise<number> {
  const closed = openFrom === null ? sql`true` : sql`day < ${openFrom}::date`;
  const r = await sql<{ n: number }>`
    WITH dt AS (
      SELECT date_trunc('month', day)::date AS month, user_id, action_type, sum(calls) AS calls, sum(failures) AS failures, sum(tokens) AS tokens,
             sum(cost_cents) AS cost, sum(below_range) AS below, sum(above_range) AS above
      FROM tokenboard.user_usage_day WHERE ${closed} GROUP BY 1, 2, 3 HAVING sum(calls) <> 0),
    mt AS (SELECT month, user_id, action_type, calls, failures, tokens, cost_cents AS cost, below_range AS below, above_range AS above FROM tokenboard.user_usage_month),
    dtot AS (
      SELECT date_trunc('month', day)::date AS month, user_id, sum(calls) AS calls, sum(failures) AS failures, sum(tokens) AS tokens, sum(cost_cents) AS cost
      FROM tokenboard.user_usage_day_total WHERE ${closed} GROUP BY 1, 2 HAVING sum(calls) <> 0),
    mtot AS (SELECT month, user_id, calls, failures, tokens, cost_cents AS cost FROM tokenboard.user_usage_month_total)
    SELECT ((SELECT count(*) FROM (SELECT * FROM dt EXCEPT SELECT * FROM mt) a) + (SELECT count(*) FROM (SELECT * FROM mt EXCEPT SELECT * FROM dt) b)
          + (SELECT count(*) FROM (SELECT * FROM dtot EXCEPT SELECT * FROM mtot) c) + (SELECT count(*) FROM (SELECT * FROM mtot EXCEPT SELECT * FROM dtot) d))::int AS n`.execute(db);
  return r.rows[0]?.n ?? -1;
}

async function horizon(db: Kysely<Database>): Promise<string | undefined> {
  const r = await sql<{ d: string }>`SELECT open_from::text AS d FROM tokenboard.user_month_horizon`.execute(db);
  return r.rows[0]?.d;
}

/** Puts the horizon anywhere, forward or back: the rebuild then fills the month rollups with the days before it. */
async function rebuildWithHorizon(db: Kysely<Database>, openFrom: string): Promise<void> {
  await sql`UPDATE tokenboard.user_month_horizon SET open_from = ${openFrom}::date`.execute(db);
  await rebuildRollups(db);
}

const RANGES: [string, InstantRange][] = [
  ["one whole month", { start: new Date("2025-02-01T00:00:00Z"), end: new Date("2025-03-01T00:00:00Z") }],
  ["most of a month, partial days at both ends", { start: new Date("2025-03-02T18:30:00Z"), end: new Date("2025-03-30T05:45:00Z") }],
  ["the last 30 days across a month boundary", { start: new Date("2025-02-27T00:00:00Z"), end: new Date("2025-03-29T00:00:00Z") }],
  ["a few days inside a month", { start: new Date("2025-03-10T00:00:00Z"), end: new Date("2025-03-14T12:00:00Z") }],
  ["three months with ragged edges", { start: new Date("2025-01-22T10:15:00Z"), end: new Date("2025-04-10T13:45:00Z") }],
  ["30 local days in Asia/Kolkata (an edge day mostly covered)", { start: new Date("2025-02-26T18:30:00Z"), end: new Date("2025-03-28T18:30:00Z") }],
  ["most of one day", { start: new Date("2025-03-05T02:00:00Z"), end: new Date("2025-03-05T23:00:00Z") }],
  ["a few hours of one day", { start: new Date("2025-03-05T10:00:00Z"), end: new Date("2025-03-05T13:00:00Z") }],
  ["two partial days and no whole day", { start: new Date("2025-03-05T03:00:00Z"), end: new Date("2025-03-06T20:00:00Z") }],
];

describe("coverDays", () => {
  it("reads a whole month as its row, most of a month as its row minus the missing days, and a little as days", () => {
    expect(coverDays("2025-02-01", "2025-03-01")).toEqual([{ month: "2025-02-01" }]);
    expect(coverDays("2025-03-03", "2025-03-30")).toEqual([
      { month: "2025-03-01" },
      { from: "2025-03-01", to: "2025-03-03", sign: -1 },
      { from: "2025-03-30", to: "2025-04-01", sign: -1 },
    ]);
    expect(coverDays("2025-02-27", "2025-03-29")).toEqual([
      { from: "2025-02-27", to: "2025-03-01", sign: 1 },
      { month: "2025-03-01" },
      { from: "2025-03-29", to: "2025-04-01", sign: -1 },
    ]);
    expect(coverDays("2025-03-10", "2025-03-14")).toEqual([{ from: "2025-03-10", to: "2025-03-14", sign: 1 }]);
  });

  it("covers every day of any range exactly once", () => {
    const start = Date.UTC(2024, 10, 1);
    for (let a = 0; a < 120; a += 7) {
      for (let len = 1; len < 100; len += 9) {
        const from = new Date(start + a * 86_400_000).toISOString().slice(0, 10);
        const to = new Date(start + (a + len) * 86_400_000).toISOString().slice(0, 10);
        const count = new Map<string, number>();
        for (const piece of coverDays(from, to)) {
          const [lo, hi, sign] = "month" in piece
            ? [piece.month, new Date(Date.UTC(Number(piece.month.slice(0, 4)), Number(piece.month.slice(5, 7)), 1)).toISOString().slice(0, 10), 1]
            : [piece.from, piece.to, piece.sign];
          for (let d = new Date(`${lo}T00:00:00Z`); d.toISOString().slice(0, 10) < hi; d = new Date(d.getTime() + 86_400_000)) {
            const day = d.toISOString().slice(0, 10);
            count.set(day, (count.get(day) ?? 0) + sign);
          }
        }
        const covered = [...count].filter(([, n]) => n !== 0);
        expect(covered.every(([day, n]) => n === 1 && day >= from && day < to), `${from}..${to}`).toBe(true);
        expect(covered.length).toBe(len);
      }
    }
  });
});

describe("userRangeSplit", () => {
  it("reads an edge day covered for more than half as the whole day minus the raw rows outside the range", () => {
    const split = userRangeSplit({ start: new Date("2025-02-26T18:30:00Z"), end: new Date("2025-03-28T18:30:00Z") });
    expect(split.days).toMatchObject({ from: "2025-02-27", to: "2025-03-29" });
    expect(split.plus).toEqual([{ start: new Date("2025-02-26T18:30:00Z"), end: new Date("2025-02-27T00:00:00Z") }]);
    expect(split.minus).toEqual([{ start: new Date("2025-03-28T18:30:00Z"), end: new Date("2025-03-29T00:00:00Z") }]);
    const whole = userRangeSplit({ start: new Date("2025-03-01T00:00:00Z"), end: new Date("2025-03-08T00:00:00Z") });
    expect(whole).toMatchObject({ days: { from: "2025-03-01", to: "2025-03-08" }, plus: [], minus: [] });
    expect(userRangeSplit({ start: new Date("2025-03-05T10:00:00Z"), end: new Date("2025-03-05T13:00:00Z") }).days).toBeNull();
  });
});

describe("per-user facts from month rollups", () => {
  beforeAll(async () => {
    await insertUsage(t.db, randomUsageRows(random, 4_000, FROM, TO));
    await runRollup(t.db, { batchSize: 900 });
    // Deletes and updates after the rollup (sign -1 rows), late rows, and a queue tail left unconsumed.
    await sql`DELETE FROM token_usage WHERE id IN (SELECT id FROM token_usage ORDER BY md5(id::text) LIMIT 150)`.execute(t.db);
    await sql`UPDATE token_usage SET tokens_used = tokens_used + 7, success = NOT success WHERE id IN (SELECT id FROM token_usage ORDER BY md5(id::text || 'u') LIMIT 100)`.execute(t.db);
    await insertUsage(t.db, randomUsageRows(random, 300, new Date("2025-02-03T00:00:00Z"), new Date("2025-02-05T00:00:00Z")));
    await runRollup(t.db);
    await insertUsage(t.db, randomUsageRows(random, 400, FROM, TO));
  });

  it.each(RANGES)("equal raw per-user sums for %s, with and without types", async (_name, range) => {
    await expectFactsEqualRaw(range);
  });

  it("month rows are the sums of their day rows, and a rebuild gives the same month rows", async () => {
    await runRollup(t.db);
    expect(await monthsOffDays(t.db, null)).toBe(0);
    const before = await sql`SELECT month, user_id, action_type, calls, tokens FROM tokenboard.user_usage_month WHERE calls <> 0 ORDER BY 1, 2, 3`.execute(t.db);
    await rebuildRollups(t.db);
    expect(await monthsOffDays(t.db, null)).toBe(0);
    const after = await sql`SELECT month, user_id, action_type, calls, tokens FROM tokenboard.user_usage_month ORDER BY 1, 2, 3`.execute(t.db);
    expect(after.rows).toEqual(before.rows);
    expect(after.rows.length).toBeGreaterThan(0);
  });

  it("deleted usage leaves no all-zero per-user rollup rows: a user whose usage is all deleted is gone from them", async () => {
    const gone = "00000000-0000-4000-8000-00000000dead";
    const userRows = async () => {
      const r = await sql<{ n: number }>`
        SELECT (SELECT count(*) FROM tokenboard.user_usage_day WHERE user_id = ${gone}) + (SELECT count(*) FROM tokenboard.user_usage_day_total WHERE user_id = ${gone})
             + (SELECT count(*) FROM tokenboard.user_usage_month WHERE user_id = ${gone}) + (SELECT count(*) FROM tokenboard.user_usage_month_total WHERE user_id = ${gone}) AS n`.execute(t.db);
      return Number(r.rows[0]?.n);
    };
    const zeroRows = async () => {
      const r = await sql<{ n: number }>`
        SELECT (SELECT count(*) FROM tokenboard.user_usage_day WHERE calls = 0) + (SELECT count(*) FROM tokenboard.user_usage_day_total WHERE calls = 0)
             + (SELECT count(*) FROM tokenboard.user_usage_month WHERE calls = 0) + (SELECT count(*) FROM tokenboard.user_usage_month_total WHERE calls = 0) AS n`.execute(t.db);
      return Number(r.rows[0]?.n);
    };
    await insertUsage(t.db, randomUsageRows(random, 40, FROM, TO).map((row) => ({ ...row, user_id: gone })));
    await runRollup(t.db);
    expect(await userRows()).toBeGreaterThan(4);
    // Half of another set of keys, and every row of the user: deletes processed by the job.
    await sql`DELETE FROM token_usage WHERE id IN (SELECT id FROM token_usage WHERE user_id <> ${gone} ORDER BY md5(id::text || 'z') LIMIT 300)`.execute(t.db);
    await sql`DELETE FROM token_usage WHERE user_id = ${gone}`.execute(t.db);
    await runRollup(t.db, { batchSize: 100 });
    expect(await userRows()).toBe(0);
    expect(await zeroRows()).toBe(0);
    for (const [, range] of RANGES) expect(await fromFacts(range, { byType: true })).toEqual(await fromRaw(range, { byType: true }));
  });
});

describe("month rollups hold the closed days only (migration 0018)", () => {
  const TODAY = DateTime.utc().toISODate() as string;

  it("the job leaves an open day's rows out of the month rows and adds a closed day's late rows to both", async () => {
    await rebuildWithHorizon(t.db, "2025-03-10");
    expect(await monthsOffDays(t.db, "2025-03-10")).toBe(0);
    const monthRows = () => sql`SELECT * FROM tokenboard.user_usage_month ORDER BY month, user_id, action_type`.execute(t.db).then((r) => r.rows);
    const before = await monthRows();
    await insertUsage(t.db, randomUsageRows(random, 60, new Date("2025-03-10T00:00:00Z"), new Date("2025-03-20T00:00:00Z")));
    await runRollup(t.db, { openFrom: "2025-03-10" });
    expect(await monthRows()).toEqual(before);
    await insertUsage(t.db, randomUsageRows(random, 60, new Date("2025-03-02T00:00:00Z"), new Date("2025-03-09T00:00:00Z")));
    await runRollup(t.db, { openFrom: "2025-03-10" });
    expect(await monthRows()).not.toEqual(before);
    expect(await horizon(t.db)).toBe("2025-03-10");
    expect(await monthsOffDays(t.db, "2025-03-10")).toBe(0);
    for (const [name, range] of RANGES) await expectFactsEqualRaw(range, t.db, name);
  });

  it.each(["2025-01-01", "2025-02-15", "2025-03-01", "2025-03-31", "2025-04-11", "2030-01-01"])(
    "per-user reads equal raw sums with the horizon at %s",
    async (openFrom) => {
      await rebuildWithHorizon(t.db, openFrom);
      expect(await monthsOffDays(t.db, openFrom)).toBe(0);
      for (const [name, range] of RANGES) await expectFactsEqualRaw(range, t.db, name);
    },
  );

  it("closing days adds them to the month rows and moves the horizon, never back; the job closes the days before today", async () => {
    await rebuildWithHorizon(t.db, "2025-02-10");
    expect(await closeUserMonthDays(t.db, { openFrom: "2025-03-12" })).toEqual({ from: "2025-02-10", to: "2025-03-12" });
    expect(await horizon(t.db)).toBe("2025-03-12");
    expect(await monthsOffDays(t.db, "2025-03-12")).toBe(0);
    expect(await closeUserMonthDays(t.db, { openFrom: "2025-03-01" })).toBeNull();
    expect(await horizon(t.db)).toBe("2025-03-12");
    for (const [name, range] of RANGES) await expectFactsEqualRaw(range, t.db, name);
    expect((await runRollup(t.db)).closed).toEqual({ from: "2025-03-12", to: TODAY });
    expect((await runRollup(t.db)).closed).toBeNull();
    expect(await horizon(t.db)).toBe(TODAY);
    expect(await monthsOffDays(t.db, TODAY)).toBe(0);
    expect(await monthsOffDays(t.db, null)).toBe(0);
  });

  it("migration 0018 takes the open days out of month rows that hold every day, and its down puts them back", async () => {
    const m = await createTestDatabase({ setAppUrl: false });
    try {
      await insertTestPricing(m.db);
      const now = DateTime.utc();
      await insertUsage(m.db, randomUsageRows(random, 1_500, now.minus({ days: 45 }).toJSDate(), now.toJSDate()));
      // And some of today's, whatever the hour.
      await insertUsage(m.db, randomUsageRows(random, 20, now.startOf("day").toJSDate(), now.toJSDate()));
      await runRollup(m.db);
      expect(await horizon(m.db)).toBe(TODAY);
      expect(await monthsOffDays(m.db, TODAY)).toBe(0);
      const openDays = await sql<{ n: number }>`SELECT count(*)::int AS n FROM tokenboard.user_usage_day WHERE day >= ${TODAY}::date`.execute(m.db);
      expect(openDays.rows[0]?.n).toBeGreaterThan(0);
      // Down past the later migrations to 0018 itself.
      const down: string[] = [];
      while (!down.includes("0018_user_month_open_days") && down.length < 20) down.push(...(await migrateDown(m.db)));
      expect(down.at(-1)).toBe("0018_user_month_open_days");
      expect(await monthsOffDays(m.db, null)).toBe(0);
      await migrateToLatest(m.db);
      expect(await horizon(m.db)).toBe(TODAY);
      expect(await monthsOffDays(m.db, TODAY)).toBe(0);
      const month = now.startOf("month");
      for (const range of [
        { start: now.minus({ days: 30 }).startOf("day").toJSDate(), end: now.toJSDate() },
        { start: month.toJSDate(), end: month.plus({ months: 1 }).toJSDate() },
        { start: month.minus({ months: 1 }).toJSDate(), end: month.toJSDate() },
      ]) {
        await expectFactsEqualRaw(range, m.db, `${range.start.toISOString()}..${range.end.toISOString()}`);
      }
    } finally {
      await m.drop();
    }
  });
});

describe("reportBounds", () => {
  it("puts a zone's month's whole UTC days in one UTC month, to be read from its month row", async () => {
    const { monthPeriod } = await import("../../app/domain/period");
    const { reportBounds } = await import("../../app/models/reports.server");
    const of = (month: string, tz: string) => {
      const p = monthPeriod(month, tz, new Date("2030-01-01T00:00:00Z"));
      return reportBounds(p.start, p.end);
    };
    expect(of("2024-11", "UTC")).toMatchObject({ d0: "2024-11-01", d1: "2024-12-01", m: "2024-11-01", m1: "2024-12-01", use_month: "true" });
    expect(of("2024-11", "Asia/Kolkata")).toMatchObject({ d0: "2024-11-01", d1: "2024-11-30", m: "2024-11-01", use_month: "true" });
    expect(of("2024-11", "America/New_York")).toMatchObject({ d0: "2024-11-02", d1: "2024-12-01", m: "2024-11-01", use_month: "true" });
    expect(of("2024-09", "Pacific/Chatham")).toMatchObject({ d0: "2024-09-01", d1: "2024-09-30", use_month: "true" });
    expect(reportBounds(new Date("2024-11-05T10:00:00Z"), new Date("2024-11-05T12:00:00Z"))).toMatchObject({ d0: "2024-11-06", d1: "2024-11-06", use_month: "false" });
  });
});
