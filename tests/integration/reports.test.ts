import { parse } from "csv-parse/sync";
import { sql } from "kysely";
import fc from "fast-check";
import { DateTime } from "luxon";
import { rebuildRollups, runRollup } from "../../app/models/rollup.server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NewTokenUsage } from "../../db/types";
import { neutralizeCell } from "../../app/domain/csv";
import { monthPeriod, previousMonth } from "../../app/domain/period";
import { monthlyReport, offsetForm, RAW_EXPORT_SETTINGS, rawCsvSql, reportBounds, withReportScope, type OffsetForm } from "../../app/models/reports.server";
import { loader as pageLoader } from "../../app/routes/reports/route";
import { loader as exportLoader } from "../../app/routes/reports.export/route";
import { loader as rawLoader } from "../../app/routes/reports.raw/route";
import { requestAs, staffSession, type TestStaff } from "../support/staff";
import { seededRandom } from "../support/usage-rows";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
let analyst: TestStaff;

beforeAll(async () => {
  t = await createTestDatabase();
  analyst = await staffSession(t.db, "analyst");
});
afterAll(async () => {
  await t.drop();
});

let userCounter = 0;
function userId(): string {
  userCounter += 1;
  return `00000000-0000-4000-8000-${String(userCounter).padStart(12, "0")}`;
}

function usage(createdAt: Date | string, overrides: Partial<NewTokenUsage> = {}): NewTokenUsage {
  return { user_id: overrides.user_id ?? userId(), action_type: "chat_conversation", model_used: "gpt-4o-mini", tokens_used: 3_000, metadata: "{}", created_at: createdAt, ...overrides };
}

async function insertUsage(rows: NewTokenUsage[]): Promise<string[]> {
  const inserted = await t.db.insertInto("token_usage").values(rows).returning("id").execute();
  return inserted.map((r) => r.id);
}

/** A local wall-clock time in `tz` as an instant. */
function local(iso: string, tz: string): Date {
  return DateTime.fromISO(iso, { zone: tz }).toJSDate();
}

async function callLoader(loader: typeof pageLoader | typeof exportLoader, url: string, staff: TestStaff | null = analyst, init: RequestInit = {}) {
  return loader({ request: requestAs(staff, url, init), params: {}, context: {} } as never);
}

async function pageData(month: string, tz: string) {
  return (await callLoader(pageLoader, `/reports?month=${month}&tz=${encodeURIComponent(tz)}`)) as Awaited<ReturnType<typeof pageLoader>>;
}

type CsvRecord = Record<string, string>;

async function csvRecords(loader: typeof exportLoader, month: string, tz: string): Promise<{ response: Response; text: string; records: CsvRecord[] }> {
  const response = (await callLoader(loader, `/x?month=${month}&tz=${encodeURIComponent(tz)}`)) as Response;
  const text = await response.text();
  return { response, text, records: parse(text, { columns: true }) as CsvRecord[] };
}

/** The month's sums computed independently: local wall-clock bounds in SQL, no luxon. */
async function sqlMonthSums(month: string, tz: string) {
  const result = await sql<{ calls: number; tokens: number; users: number }>`
    SELECT count(*)::bigint AS calls, COALESCE(sum(tokens_used), 0)::bigint AS tokens, count(DISTINCT user_id)::bigint AS users
    FROM token_usage
    WHERE (created_at AT TIME ZONE ${tz}) >= ${`${month}-01`}::timestamp
      AND (created_at AT TIME ZONE ${tz}) < ${`${month}-01`}::timestamp + interval '1 month'`.execute(t.db);
  return result.rows[0] as { calls: number; tokens: number; users: number };
}

/** Tokens and calls per local day and action type of the month, straight from token_usage. */
async function sqlDays(month: string, tz: string) {
  const result = await sql<{ day: string; action_type: string; tokens: number; calls: number }>`
    SELECT to_char(created_at AT TIME ZONE ${tz}, 'YYYY-MM-DD') AS day, action_type, sum(tokens_used)::bigint AS tokens, count(*)::bigint AS calls
    FROM token_usage
    WHERE (created_at AT TIME ZONE ${tz}) >= ${`${month}-01`}::timestamp
      AND (created_at AT TIME ZONE ${tz}) < ${`${month}-01`}::timestamp + interval '1 month'
    GROUP BY 1, 2 ORDER BY 1, 2`.execute(t.db);
  return result.rows;
}

async function reportDays(month: string, tz: string) {
  const period = monthPeriod(month, tz);
  return (await monthlyReport(t.pool, period, monthPeriod(previousMonth(month), tz))).perDay;
}

function totalRow(records: CsvRecord[]): CsvRecord {
  const last = records.at(-1);
  expect(last?.user_id).toBe("TOTAL");
  return last as CsvRecord;
}

const ZONE_MONTHS: [string, string][] = [
  ["America/New_York", "2024-03"],
  ["America/New_York", "2024-11"],
  ["Europe/Berlin", "2024-03"],
  ["Europe/Berlin", "2024-10"],
  ["Asia/Kolkata", "2024-05"],
  ["Australia/Adelaide", "2024-04"],
  ["Australia/Adelaide", "2024-10"],
  ["Pacific/Chatham", "2024-09"],
];

describe("monthly totals", () => {
  it.each(ZONE_MONTHS)("the page, the monthly CSV and raw SQL agree to the token for %s in %s", async (tz, month) => {
    const period = monthPeriod(month, tz);
    const span = period.end.getTime() - period.start.getTime();
    const rows: NewTokenUsage[] = [];
    // Rows spread over the month and a day either side, so the boundaries are exercised.
    for (let i = 0; i < 120; i++) {
      const at = new Date(period.start.getTime() - 86_400_000 + ((i * 7_919_333) % (span + 2 * 86_400_000)));
      rows.push(usage(at, { tokens_used: 1_000 + ((i * 37) % 4_500), success: i % 9 !== 0, calculated_cost_cents: i % 3 === 0 ? null : 1.2345 + i }));
    }
    await insertUsage(rows);
    const [page, csv, sums] = [await pageData(month, tz), await csvRecords(exportLoader, month, tz), await sqlMonthSums(month, tz)];
    // The chart's days (from the rollups and the queue tail) are the zone's local days.
    const days = await sqlDays(month, tz);
    expect(days.length).toBeGreaterThan(5);
    expect(await reportDays(month, tz)).toEqual(days);
    const total = totalRow(csv.records);
    expect(sums.calls).toBeGreaterThan(0);
    expect(page.total.tokens_used).toBe(sums.tokens);
    expect(page.total.calls).toBe(sums.calls);
    expect(page.total.users).toBe(sums.users);
    expect(Number(total.tokens_used)).toBe(sums.tokens);
    expect(Number(total.calls)).toBe(sums.calls);
    expect(Number(total.users)).toBe(sums.users);
    expect(Number(total.cost_usd)).toBeCloseTo(page.total.cost_cents / 100, 6);
    const details = csv.records.slice(0, -1);
    expect(details.reduce((s, r) => s + Number(r.tokens_used), 0)).toBe(sums.tokens);
    expect(details.reduce((s, r) => s + Number(r.calls), 0)).toBe(sums.calls);
    // The same month once the rows have moved from the queue into the rollups: the identical file.
    await runRollup(t.db);
    const queued = await sql<{ n: number }>`SELECT count(*)::int AS n FROM tokenboard.usage_rollup_queue`.execute(t.db);
    expect(queued.rows[0]?.n).toBe(0);
    const rolledUp = await csvRecords(exportLoader, month, tz);
    expect(rolledUp.text).toBe(csv.text);
    expect((await pageData(month, tz)).total).toEqual(page.total);
    expect(await reportDays(month, tz)).toEqual(days);
  });

  it.each(ZONE_MONTHS)("a row at 23:59:59.999 local on the last day belongs to the month and one at 00:00 local of the 1st to the next (%s, %s)", async (tz, month) => {
    const next = DateTime.fromISO(`${month}-01`, { zone: tz }).plus({ months: 1 });
    const lastDay = next.minus({ days: 1 }).toISODate() as string;
    const [lastMoment, nextMidnight, firstMidnight, beforeFirst] = await insertUsage([
      usage(local(`${lastDay}T23:59:59.999`, tz), { tokens_used: 11 }),
      usage(local(`${next.toISODate()}T00:00:00.000`, tz), { tokens_used: 13 }),
      usage(local(`${month}-01T00:00:00.000`, tz), { tokens_used: 17 }),
      usage(new Date(local(`${month}-01T00:00:00.000`, tz).getTime() - 1), { tokens_used: 19 }),
    ]);
    const raw = await csvRecords(rawLoader, month, tz);
    const ids = new Set(raw.records.map((r) => r.id));
    expect(ids.has(lastMoment as string)).toBe(true);
    expect(ids.has(firstMidnight as string)).toBe(true);
    expect(ids.has(nextMidnight as string)).toBe(false);
    expect(ids.has(beforeFirst as string)).toBe(false);
    const lastRecord = raw.records.find((r) => r.id === lastMoment) as CsvRecord;
    expect(lastRecord.created_at).toMatch(new RegExp(`^${lastDay}T23:59:59\\.999[+-]\\d{2}:\\d{2}$`));
    expect(DateTime.fromISO(String(lastRecord.created_at)).toMillis()).toBe(local(`${lastDay}T23:59:59.999`, tz).getTime());
    const following = await csvRecords(rawLoader, next.toFormat("yyyy-MM"), tz);
    expect(following.records.some((r) => r.id === nextMidnight)).toBe(true);
    const sums = await sqlMonthSums(month, tz);
    expect(raw.records.length).toBe(sums.calls);
    expect(raw.records.reduce((s, r) => s + Number(r.tokens_used), 0)).toBe(sums.tokens);
  });
});

describe("edge days read whole", () => {
  // New York's first UTC day and Kolkata's last are mostly inside the month: they are read as
  // the day's rollup minus the raw rows outside the month. A user with calls on both sides of
  // the month's boundary within that day must still get the month's sums and its own first and
  // last call, whether the rows are still queued or rolled up.
  const CASES: { tz: string; month: string; times: string[]; inside: string[] }[] = [
    {
      tz: "America/New_York",
      month: "2023-03",
      times: ["2023-03-01T02:00:00Z", "2023-03-01T07:00:00Z", "2023-03-01T20:00:00Z", "2023-03-15T12:00:00Z", "2023-04-01T03:00:00Z", "2023-04-01T06:00:00Z"],
      inside: ["2023-03-01T07:00:00Z", "2023-03-01T20:00:00Z", "2023-03-15T12:00:00Z", "2023-04-01T03:00:00Z"],
    },
    {
      tz: "Asia/Kolkata",
      month: "2023-05",
      times: ["2023-04-30T12:00:00Z", "2023-04-30T20:00:00Z", "2023-05-10T00:00:00Z", "2023-05-31T10:00:00Z", "2023-05-31T20:00:00Z"],
      inside: ["2023-04-30T20:00:00Z", "2023-05-10T00:00:00Z", "2023-05-31T10:00:00Z"],
    },
  ];

  it.each(CASES)("sums, first and last call of a user with calls on both sides of the boundary ($tz, $month)", async ({ tz, month, times, inside }) => {
    const bounds = reportBounds(monthPeriod(month, tz).start, monthPeriod(month, tz).end);
    expect(bounds.lead_sub === "true" || bounds.tail_sub === "true").toBe(true);
    const user = userId();
    await insertUsage(times.map((at, i) => usage(new Date(at), { user_id: user, tokens_used: 100 * (i + 1) })));
    const expected = {
      calls: String(inside.length),
      tokens_used: String(inside.reduce((sum, at) => sum + 100 * (times.indexOf(at) + 1), 0)),
      first_at: DateTime.fromISO(inside[0] as string, { zone: tz }).toFormat("yyyy-MM-dd'T'HH:mm:ssZZ"),
      last_at: DateTime.fromISO(inside.at(-1) as string, { zone: tz }).toFormat("yyyy-MM-dd'T'HH:mm:ssZZ"),
    };
    const row = async () => {
      const { records } = await csvRecords(exportLoader, month, tz);
      const found = records.find((r) => r.user_id === user) as CsvRecord;
      return { calls: found.calls, tokens_used: found.tokens_used, first_at: found.first_at, last_at: found.last_at };
    };
    expect(await row()).toEqual(expected);
    await runRollup(t.db);
    expect(await row()).toEqual(expected);
    const sums = await sqlMonthSums(month, tz);
    expect(Number(totalRow((await csvRecords(exportLoader, month, tz)).records).tokens_used)).toBe(sums.tokens);
  });
});

describe("per (user, action type) rows against raw SQL", () => {
  const CASES: [string, string][] = [
    ["America/New_York", "2022-03"],
    ["Asia/Kolkata", "2022-05"],
    ["Pacific/Chatham", "2022-09"],
    ["Europe/Berlin", "2022-10"],
    ["Australia/Adelaide", "2022-04"],
    ["UTC", "2022-07"],
  ];

  async function sqlPairs(month: string, tz: string) {
    const result = await sql<{ user_id: string; action_type: string; calls: number; tokens: number; first_ms: number; last_ms: number }>`
      SELECT user_id::text, action_type, count(*)::int AS calls, sum(tokens_used)::bigint AS tokens,
             (extract(epoch FROM min(created_at)) * 1000)::float8 AS first_ms, (extract(epoch FROM max(created_at)) * 1000)::float8 AS last_ms
      FROM token_usage
      WHERE (created_at AT TIME ZONE ${tz}) >= ${`${month}-01`}::timestamp
        AND (created_at AT TIME ZONE ${tz}) < ${`${month}-01`}::timestamp + interval '1 month'
      GROUP BY 1, 2 ORDER BY 1, 2`.execute(t.db);
    return result.rows.map((r) => ({ ...r, first_ms: Math.round(r.first_ms), last_ms: Math.round(r.last_ms) }));
  }

  async function csvPairs(month: string, tz: string) {
    const { records } = await csvRecords(exportLoader, month, tz);
    return records
      .filter((r) => r.user_id !== "TOTAL")
      .map((r) => ({ user_id: r.user_id, action_type: r.action_type, calls: Number(r.calls), tokens: Number(r.tokens_used), first_ms: Date.parse(r.first_at as string), last_ms: Date.parse(r.last_at as string) }));
  }

  it.each(CASES)("calls, tokens, first and last call per pair equal raw SQL in %s, %s (queued, mixed, rolled up)", async (tz, month) => {
    const period = monthPeriod(month, tz);
    const users = Array.from({ length: 4 }, () => userId());
    const types = ["chat_conversation", "vision_generation", "transcription"];
    const random = seededRandom(20220301);
    // Rows from two days before the month to two days after it, many per pair, so that every
    // edge day holds calls on both sides of the month's boundary.
    const from = period.start.getTime() - 2 * 86_400_000;
    const span = period.end.getTime() + 2 * 86_400_000 - from;
    const rows = Array.from({ length: 600 }, () =>
      usage(new Date(from + Math.floor(random() * span)), { user_id: users[Math.floor(random() * users.length)], action_type: types[Math.floor(random() * types.length)], tokens_used: 1 + Math.floor(random() * 900) }),
    );
    await insertUsage(rows.slice(0, 300));
    await runRollup(t.db);
    await insertUsage(rows.slice(300));
    const expected = (await sqlPairs(month, tz)).filter((p) => users.includes(p.user_id));
    expect(expected.length).toBe(users.length * types.length);
    const mine = async () => (await csvPairs(month, tz)).filter((p) => users.includes(p.user_id as string));
    expect(await mine()).toEqual(expected);
    await runRollup(t.db);
    expect(await mine()).toEqual(expected);
  });

  // After the test above: its month's rows are stored and rolled up.
  it.each(CASES)("pairs, first and last call still equal raw SQL wherever the month rollups' open days begin (migration 0018; %s, %s)", async (tz, month) => {
    const expected = await sqlPairs(month, tz);
    expect(expected.length).toBeGreaterThan(0);
    const m = DateTime.fromISO(`${month}-01`, { zone: "UTC" });
    const horizons = [m.minus({ days: 1 }), m.plus({ days: 1 }), m.plus({ days: 14 }), m.plus({ months: 1 }).minus({ days: 1 }), m.plus({ months: 1 })];
    try {
      for (const openFrom of horizons.map((d) => d.toISODate() as string)) {
        await sql`UPDATE tokenboard.user_month_horizon SET open_from = ${openFrom}::date`.execute(t.db);
        await rebuildRollups(t.db);
        expect(await csvPairs(month, tz), `open from ${openFrom}`).toEqual(expected);
      }
    } finally {
      await sql`UPDATE tokenboard.user_month_horizon SET open_from = (now() AT TIME ZONE 'UTC')::date - 1`.execute(t.db);
      await rebuildRollups(t.db);
    }
  });
});

describe("CSV shape", () => {
  it("an empty month has the header and a TOTAL row of zeros", async () => {
    const { text, records, response } = await csvRecords(exportLoader, "1999-02", "UTC");
    expect(response.status).toBe(200);
    expect(text.split("\n")[0]).toBe("user_id,action_type,calls,tokens_used,cost_usd,email,users,failures,below_range,above_range,first_at,last_at");
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ user_id: "TOTAL", calls: "0", tokens_used: "0", cost_usd: "0.000000", users: "0", failures: "0", first_at: "" });
    const raw = await csvRecords(rawLoader, "1999-02", "UTC");
    expect(raw.records).toHaveLength(0);
    expect(raw.text.split("\n")[0]?.startsWith("id,created_at,user_id,email,action_type")).toBe(true);
  });

  it("downloads are attachments named after the month and zone", async () => {
    const { response } = await csvRecords(exportLoader, "1999-03", "Asia/Kolkata");
    expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(response.headers.get("content-disposition")).toBe('attachment; filename="tokenboard-usage-by-user-1999-03-Asia_Kolkata.csv"');
  });

  it("text cells starting with = + - @ are neutralised while negative numbers stay numbers", async () => {
    const user = userId();
    await t.db.insertInto("app_users").values({ user_id: user, email: "=HYPERLINK(\"http://evil\")", display_name: "@mallory" }).execute();
    const at = local("1998-06-10T12:00:00", "UTC");
    const [id] = await insertUsage([
      usage(at, { user_id: user, action_type: "admin_deduct", tokens_used: -500, route: "+cmd", error_message: "-2+3", event_id: "@evt", metadata: JSON.stringify({ note: "=1+1" }) }),
      usage(at, { user_id: user, action_type: "chat_conversation", tokens_used: 2_500 }),
    ]);
    const monthly = await csvRecords(exportLoader, "1998-06", "UTC");
    const deduct = monthly.records.find((r) => r.action_type === "admin_deduct") as CsvRecord;
    expect(deduct.email).toBe("'=HYPERLINK(\"http://evil\")");
    expect(deduct.tokens_used).toBe("-500");
    expect(totalRow(monthly.records).tokens_used).toBe("2000");
    const raw = await csvRecords(rawLoader, "1998-06", "UTC");
    const row = raw.records.find((r) => r.id === id) as CsvRecord;
    expect(row).toMatchObject({ tokens_used: "-500", route: "'+cmd", error_message: "'-2+3", event_id: "'@evt", email: "'=HYPERLINK(\"http://evil\")" });
    expect(JSON.parse(row.metadata as string)).toEqual({ note: "=1+1" });
  });

  it("metadata JSON is neutralised only when its text could run: a negative number, not a string or object", async () => {
    const at = local("1998-07-10T12:00:00", "UTC");
    const ids = await insertUsage([usage(at, { metadata: "-5" }), usage(at, { metadata: JSON.stringify("=cmd") }), usage(at, { metadata: "7" }), usage(at, { metadata: JSON.stringify({ a: [1, "-2"] }) })]);
    const raw = await csvRecords(rawLoader, "1998-07", "UTC");
    const byId = new Map(raw.records.map((r) => [r.id, r.metadata]));
    expect(ids.map((id) => byId.get(id))).toEqual(["'-5", '"=cmd"', "7", '{"a": [1, "-2"]}']);
  });

  it("PostgreSQL's CSV applies the same neutralisation and quoting as the JavaScript rule, for any text", async () => {
    const texts = fc.sample(fc.string({ unit: "binary", maxLength: 30 }).map((s) => s.replace(/\0/g, "")), { numRuns: 300, seed: 7 });
    texts.push("=1+1", "+x", "-x", "@x", "\tx", "\rx", "a,b", 'q"q', "line\nbreak", "", "\\.");
    const at = local("1996-04-10T12:00:00", "UTC");
    const ids = await insertUsage(texts.map((text) => usage(at, { error_message: text })));
    const raw = await csvRecords(rawLoader, "1996-04", "UTC");
    const byId = new Map(raw.records.map((r) => [r.id, r.error_message]));
    ids.forEach((id, i) => expect(byId.get(id)).toBe(neutralizeCell(texts[i] as string)));
  });

  it("the raw CSV writes created_at with the zone's offset, including +13:45", async () => {
    const at = local("1997-01-15T08:30:00.123456", "Pacific/Chatham");
    const [id] = await insertUsage([usage(at)]);
    const raw = await csvRecords(rawLoader, "1997-01", "Pacific/Chatham");
    const row = raw.records.find((r) => r.id === id) as CsvRecord;
    expect(row.created_at).toBe("1997-01-15T08:30:00.123+13:45");
    expect(row.success).toBe("true");
  });

  it("offsets are ±hh:mm in whole-hour, half-hour and mixed zones (Lord Howe moves by 30 minutes)", async () => {
    const cases: [string, string, OffsetForm][] = [["UTC", "1995-10", "hours"], ["Europe/Berlin", "1995-10", "hours"], ["Asia/Kolkata", "1995-10", "minutes"], ["Australia/Lord_Howe", "1995-10", "mixed"]];
    const at = [local("1995-10-02T12:00:00", "UTC"), local("1995-10-30T12:00:00", "UTC")];
    const ids = await insertUsage(at.map((a) => usage(a)));
    for (const [tz, month, form] of cases) {
      expect(await withReportScope(t.pool, monthPeriod(month, tz), undefined, offsetForm), tz).toBe(form);
      const raw = await csvRecords(rawLoader, month, tz);
      const written = ids.map((id) => raw.records.find((r) => r.id === id)?.created_at);
      expect(written, tz).toEqual(at.map((a) => DateTime.fromJSDate(a, { zone: tz }).toFormat("yyyy-MM-dd'T'HH:mm:ssZZ")));
      written.forEach((w, i) => expect(new Date(w as string).getTime()).toBe(at[i]?.getTime()));
    }
    // Lord Howe's two rows carry two different offsets (+10:30 and +11:00).
    const lordHowe = await csvRecords(rawLoader, "1995-10", "Australia/Lord_Howe");
    expect(new Set(ids.map((id) => lordHowe.records.find((r) => r.id === id)?.created_at?.slice(-6))).size).toBe(2);
  });
});

describe("raw CSV order", () => {
  it("rows come oldest first, equal timestamps by id, read in index order without sorting the month", async () => {
    const month = "1994-05";
    const random = seededRandom(11);
    const instants = Array.from({ length: 12 }, (_, i) => local(`1994-05-${String(1 + i * 2).padStart(2, "0")}T10:00:00`, "UTC"));
    // Shuffled insert order, several rows per instant (ties), and rows just outside the month.
    const rows = Array.from({ length: 120 }, () => usage(instants[Math.floor(random() * instants.length)] as Date));
    await insertUsage([...rows, usage(local("1994-04-30T23:59:59.999", "UTC")), usage(local("1994-06-01T00:00:00", "UTC"))]);
    const expected = await sql<{ id: string }>`
      SELECT id FROM token_usage WHERE created_at >= '1994-05-01T00:00:00Z' AND created_at < '1994-06-01T00:00:00Z' ORDER BY created_at, id`.execute(t.db);
    const raw = await csvRecords(rawLoader, month, "UTC");
    expect(raw.records.map((r) => r.id)).toEqual(expected.rows.map((r) => r.id));

    // The plan the export runs, even where a table scan looks cheap (as it does to the planner
    // at 1M rows, whose full Sort of every rendered row then spilled 203 MB to disk).
    const plan = await withReportScope(t.pool, monthPeriod(month, "UTC"), undefined, async (client) => {
      await client.query("SET LOCAL random_page_cost = 1000");
      await client.query(RAW_EXPORT_SETTINGS);
      const { rows: explained } = await client.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${rawCsvSql("hours")}`);
      return JSON.stringify(explained[0]?.["QUERY PLAN"]);
    });
    expect(plan).toContain('"Node Type":"Incremental Sort"');
    expect(plan).toContain("idx_token_usage_created_at");
    expect(plan).not.toContain('"Node Type":"Sort"');
  });
});

describe("access", () => {
  it("an analyst can view the report and download both CSVs", async () => {
    const page = await pageData("2024-03", "UTC");
    expect(page.month).toBe("2024-03");
    for (const loader of [exportLoader, rawLoader]) {
      const response = (await callLoader(loader, "/reports/export.csv?month=2024-03&tz=UTC")) as Response;
      expect(response.status).toBe(200);
      await response.body?.cancel();
    }
  });

  it("a download the client abandons ends its query and returns the connection", async () => {
    const running = async () => {
      const result = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT%' AND datname = current_database()`.execute(t.db);
      return result.rows[0]?.n ?? -1;
    };
    // More rows than socket buffers hold, so the COPY is still running after the first chunk.
    await sql`INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, created_at)
      SELECT gen_random_uuid(), 'chat_conversation', 'gpt-4o', 3000, timestamptz '1990-01-01 00:00Z' + g * interval '1 second'
      FROM generate_series(1, 60000) g`.execute(t.db);
    const controller = new AbortController();
    const response = (await callLoader(rawLoader, "/reports/raw.csv?month=1990-01&tz=UTC", analyst, { signal: controller.signal })) as Response;
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    expect((await reader.read()).done).toBe(false);
    expect(await running()).toBe(1);
    controller.abort();
    await expect.poll(running, { timeout: 5_000 }).toBe(0);
  });

  it("support staff get 403 on the page and both downloads", async () => {
    const support = await staffSession(t.db, "support");
    for (const loader of [pageLoader, exportLoader, rawLoader]) {
      const thrown = await callLoader(loader, "/reports?month=2024-03&tz=UTC", support).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(Response);
      expect((thrown as Response).status).toBe(403);
    }
  });

  it("anonymous visitors are sent to log in", async () => {
    for (const loader of [pageLoader, exportLoader, rawLoader]) {
      const thrown = (await callLoader(loader, "/reports/export.csv?month=2024-03&tz=UTC", null).catch((e: unknown) => e)) as Response;
      expect(thrown.status).toBe(302);
      expect(thrown.headers.get("location")).toMatch(/^\/login\?redirectTo=/);
    }
  });

  it("a bad month or zone answers 400 naming the parameter", async () => {
    const badMonth = (await callLoader(exportLoader, "/reports/export.csv?month=2024-13&tz=UTC")) as Response;
    expect(badMonth.status).toBe(400);
    expect((await badMonth.json()).errors).toHaveProperty("month");
    const badZone = (await callLoader(rawLoader, "/reports/raw.csv?month=2024-03&tz=Mars/Olympus")) as Response;
    expect(badZone.status).toBe(400);
    expect((await badZone.json()).errors).toHaveProperty("tz");
  });
});
