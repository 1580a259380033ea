/**
 * The money views against a real database: the monthly balance roll-forward (page, CSV, CLI),
 * the Billing page's figures and the support view's running balance. Every ledger row is made
 * here, with consistent balance_after, so nothing depends on how charging or adoption write.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LedgerKind, NewTokenUsage } from "../../db/types";
import { monthPeriod } from "../../app/domain/period";
import { rollForwardHolds } from "../../app/features/money/rules";
import { rollForward } from "../../app/features/money/roll-forward.server";
import { adjustBalance } from "../../app/models/ledger.server";
import { SYSTEM_ACTOR } from "../../app/models/audit.server";
import { loader as billingLoader } from "../../app/routes/billing/route";
import { loader as balancesCsvLoader } from "../../app/routes/reports.balances/route";
import { loader as reportsLoader } from "../../app/routes/reports/route";
import { loader as userLoader } from "../../app/routes/user/route";
import { command as exportBalances, writeBalancesExport } from "../../scripts/commands/export-balances";
import { requestAs, staffSession, type TestStaff } from "../support/staff";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
let admin: TestStaff;
let analyst: TestStaff;

beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
  analyst = await staffSession(t.db, "analyst");
});
afterAll(async () => t.drop());

let counter = 0;
const balances = new Map<string, number>();

function newUser(): string {
  counter += 1;
  return `00000000-0000-4000-8000-${String(counter).padStart(12, "0")}`;
}

interface EntryOptions {
  amountPaidCents?: number;
  currency?: string;
  expiresAt?: Date;
  remaining?: number;
}

/** Appends a ledger entry with the balance after it, and keeps token_balances in step. */
async function entry(userId: string, kind: LedgerKind, amount: number, createdAt: string | Date, options: EntryOptions = {}): Promise<number> {
  counter += 1;
  const after = (balances.get(userId) ?? 0) + amount;
  balances.set(userId, after);
  const row = await t.db
    .insertInto("ledger_entries")
    .values({
      user_id: userId, kind, amount, balance_after: after, reason: `test ${kind}`, actor_id: null, actor_label: "test",
      idempotency_key: `test:${counter}`, forced: after < 0, created_at: createdAt, usage_id: null, expired_entry_id: null,
      expires_at: options.expiresAt ?? null, remaining: options.remaining ?? null,
      amount_paid_cents: options.amountPaidCents ?? null, currency: options.currency ?? null, source_ref: null, consumer_id: null,
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  await t.db.insertInto("token_balances").values({ user_id: userId, balance: after })
    .onConflict((oc) => oc.column("user_id").doUpdateSet({ balance: after })).execute();
  return row.id;
}

async function resetLedger(): Promise<void> {
  // Ledger rows refuse DELETE (append-only); tests start from an empty ledger instead.
  await sql`ALTER TABLE tokenboard.ledger_entries DISABLE TRIGGER ledger_entries_no_delete`.execute(t.db);
  await sql`DELETE FROM tokenboard.ledger_entries`.execute(t.db);
  await sql`ALTER TABLE tokenboard.ledger_entries ENABLE TRIGGER ledger_entries_no_delete`.execute(t.db);
  await sql`DELETE FROM tokenboard.ledger_month_totals`.execute(t.db);
  await sql`DELETE FROM tokenboard.token_balances`.execute(t.db);
  await sql`DELETE FROM public.token_usage`.execute(t.db);
  await sql`DELETE FROM tokenboard.usage_rollup_queue`.execute(t.db);
  balances.clear();
}

beforeEach(resetLedger);

type CsvRecord = Record<string, string>;

async function csvOf(month: string, tz: string): Promise<{ text: string; records: CsvRecord[] }> {
  const response = (await balancesCsvLoader({ request: requestAs(analyst, `/reports/balances.csv?month=${month}&tz=${encodeURIComponent(tz)}`), params: {}, context: {} } as never)) as Response;
  expect(response.status).toBe(200);
  const text = await response.text();
  return { text, records: parse(text, { columns: true }) as CsvRecord[] };
}

function figures(r: CsvRecord) {
  const n = (k: string) => Number(r[k]);
  return { opening_balance: n("opening_balance"), purchased: n("purchased"), granted: n("granted"), charged: n("charged"), deducted: n("deducted"), expired: n("expired"), closing_balance: n("closing_balance") };
}

/** A quarter's worth of every kind for three owners, one overdrawn, one refunded. */
async function quarterFixture() {
  const [a, b, c] = [newUser(), newUser(), newUser()];
  await entry(a, "purchase", 10_000, "2025-12-20T10:00:00Z", { amountPaidCents: 1_000, currency: "USD" });
  await entry(a, "grant", 5_000, "2026-01-02T10:00:00Z", { expiresAt: new Date("2026-02-02T10:00:00Z"), remaining: 5_000 });
  await entry(a, "usage", -3_000, "2026-01-15T10:00:00Z");
  await entry(a, "expiry", -2_000, "2026-02-02T10:00:00Z");
  await entry(a, "deduct", -500, "2026-02-10T10:00:00Z");
  await entry(a, "usage", -6_000, "2026-03-05T10:00:00Z");
  await entry(b, "grant", 1_000, "2026-01-05T10:00:00Z");
  await entry(b, "usage", -4_000, "2026-01-20T10:00:00Z");
  await entry(b, "purchase", 2_000, "2026-02-11T10:00:00Z", { amountPaidCents: 300, currency: "EUR" });
  await entry(c, "usage", -700, "2026-01-25T10:00:00Z");
  await entry(c, "correction", 200, "2026-01-26T10:00:00Z");
  await entry(c, "correction", 500, "2026-02-03T10:00:00Z");
  return { a, b, c };
}

/** The month totals the triggers keep, against a GROUP BY of the entries themselves. */
async function monthTotalsDrift(): Promise<unknown[]> {
  const result = await sql`
    SELECT coalesce(a.month, b.month) AS month, coalesce(a.user_id, b.user_id) AS user_id, coalesce(a.kind, b.kind) AS kind, a.amount AS kept, b.amount AS actual
    FROM tokenboard.ledger_month_totals a
    FULL JOIN (SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, user_id, kind, sum(amount)::bigint AS amount, count(*)::bigint AS entries
               FROM tokenboard.ledger_entries GROUP BY 1, 2, 3) b ON a.month = b.month AND a.user_id = b.user_id AND a.kind = b.kind
    WHERE a.amount IS DISTINCT FROM b.amount OR a.entries IS DISTINCT FROM b.entries`.execute(t.db);
  return result.rows;
}

describe("ledger month totals", () => {
  it("follow every writer: adjustments (batched and general path), expiries, direct inserts and an entry moved in time", async () => {
    const u = newUser();
    const v = newUser();
    const key = () => `totals-${newUser()}`;
    await adjustBalance(t.db, SYSTEM_ACTOR, { userId: u, kind: "grant", amount: 500, reason: "test grant", idempotencyKey: key() });
    await adjustBalance(t.db, SYSTEM_ACTOR, { userId: u, kind: "grant", amount: 300, reason: "test expiring grant", idempotencyKey: key(), expiresAt: new Date(Date.now() + 50) });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The deduction first expires the lapsed grant (an expiry entry), on the general path.
    await adjustBalance(t.db, SYSTEM_ACTOR, { userId: u, kind: "deduct", amount: 100, reason: "test deduct", idempotencyKey: key() });
    await Promise.all([1, 2, 3].map((n) => adjustBalance(t.db, SYSTEM_ACTOR, { userId: v, kind: "grant", amount: n, reason: "test concurrent", idempotencyKey: key() })));
    await entry(v, "usage", -4, "2025-06-30T23:59:59Z");
    const kinds = await sql<{ kind: string }>`SELECT DISTINCT kind FROM tokenboard.ledger_entries WHERE user_id = ${u} ORDER BY kind`.execute(t.db);
    expect(kinds.rows.map((r) => r.kind)).toEqual(["deduct", "expiry", "grant"]);
    expect(await monthTotalsDrift()).toEqual([]);
    await sql`UPDATE tokenboard.ledger_entries SET created_at = '2025-07-01T00:00:00Z' WHERE user_id = ${v} AND kind = 'usage'`.execute(t.db);
    expect(await monthTotalsDrift()).toEqual([]);
    const july = await rollForward(t.db, monthPeriod("2025-07", "UTC"));
    expect(july.rows.find((r) => r.user_id === v)).toMatchObject({ opening_balance: 0, charged: 4, closing_balance: -4 });
  });
});

describe("balance roll-forward", () => {
  it("holds opening + purchased + granted − charged − deducted − expired = closing on every row, TOTAL included", async () => {
    await quarterFixture();
    for (const month of ["2025-12", "2026-01", "2026-02", "2026-03"]) {
      const { records } = await csvOf(month, "UTC");
      expect(records.at(-1)?.user_id).toBe("TOTAL");
      for (const r of records) expect(rollForwardHolds(figures(r)), `${month} ${r.user_id}`).toBe(true);
    }
  });

  it("carries each month's closing balance into the next month's opening, per owner and in total", async () => {
    await quarterFixture();
    const months = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04"];
    const byMonth = await Promise.all(months.map((m) => rollForward(t.db, monthPeriod(m, "Europe/Berlin"))));
    for (let i = 1; i < byMonth.length; i++) {
      const before = byMonth[i - 1];
      const after = byMonth[i];
      if (!before || !after) throw new Error("missing month");
      expect(after.total.opening_balance).toBe(before.total.closing_balance);
      const closing = new Map(before.rows.map((r) => [r.user_id, r.closing_balance]));
      for (const row of after.rows) expect(row.opening_balance, `${months[i]} ${row.user_id}`).toBe(closing.get(row.user_id) ?? 0);
    }
  });

  it("totals equal the ledger: flows per kind in the month and the closing total as Σ of every amount before its end", async () => {
    await quarterFixture();
    const period = monthPeriod("2026-01", "UTC");
    const rf = await rollForward(t.db, period);
    const sums = await sql<{ kind: string; total: number }>`
      SELECT kind, sum(amount)::bigint AS total FROM ledger_entries
      WHERE created_at >= ${period.start} AND created_at < ${period.end} GROUP BY kind`.execute(t.db);
    const of = (kind: string) => sums.rows.find((r) => r.kind === kind)?.total ?? 0;
    const before = await sql<{ total: number }>`SELECT COALESCE(sum(amount), 0)::bigint AS total FROM ledger_entries WHERE created_at < ${period.end}`.execute(t.db);
    expect(rf.total).toMatchObject({
      purchased: of("purchase"), granted: of("grant"), charged: -(of("usage") + of("correction")), deducted: -of("deduct") || 0, expired: -of("expiry") || 0,
      closing_balance: before.rows[0]?.total,
    });
    // Worked by hand: a 10,000 → 12,000 after the grant and 3,000 of usage; b 1,000 − 4,000; c −700 + 200.
    expect(rf.total).toMatchObject({ opening_balance: 10_000, purchased: 0, granted: 6_000, charged: 7_500, deducted: 0, expired: 0, closing_balance: 8_500 });
  });

  it("reports a month whose corrections refund more than it charged as charged 0 and the refund granted", async () => {
    const { c } = await quarterFixture();
    const rf = await rollForward(t.db, monthPeriod("2026-02", "UTC"));
    const row = rf.rows.find((r) => r.user_id === c);
    expect(row).toMatchObject({ opening_balance: -500, purchased: 0, granted: 500, charged: 0, corrections: 500, closing_balance: 0 });
    expect(rollForwardHolds(row as NonNullable<typeof row>)).toBe(true);
  });

  it("splits months at local midnight in America/New_York across the DST change of March", async () => {
    const u = newUser();
    // 03:00Z on 1 March is 22:00 on 28 February in New York (EST, −5).
    await entry(u, "grant", 100, "2026-03-01T03:00:00Z");
    // 03:30Z on 1 April is 23:30 on 31 March (EDT, −4, DST began 8 March).
    await entry(u, "grant", 20, "2026-04-01T03:30:00Z");
    // 04:30Z on 1 April is 00:30 on 1 April in New York.
    await entry(u, "grant", 3, "2026-04-01T04:30:00Z");
    const ny = async (m: string) => (await rollForward(t.db, monthPeriod(m, "America/New_York"))).total;
    const utc = async (m: string) => (await rollForward(t.db, monthPeriod(m, "UTC"))).total;
    expect(await ny("2026-02")).toMatchObject({ granted: 100, closing_balance: 100 });
    expect(await ny("2026-03")).toMatchObject({ opening_balance: 100, granted: 20, closing_balance: 120 });
    expect(await ny("2026-04")).toMatchObject({ opening_balance: 120, granted: 3, closing_balance: 123 });
    expect(await utc("2026-02")).toMatchObject({ granted: 0, closing_balance: 0 });
    expect(await utc("2026-03")).toMatchObject({ granted: 100, closing_balance: 100 });
    expect(await utc("2026-04")).toMatchObject({ opening_balance: 100, granted: 23 });
  });

  it("puts an entry near midnight UTC in different months in Asia/Kolkata and Pacific/Chatham", async () => {
    const u = newUser();
    await entry(u, "grant", 1_000, "2026-01-10T00:00:00Z");
    // 19:00Z on 31 January: 00:30 on 1 February in Kolkata (+05:30), 08:45 on 1 February in Chatham (+13:45), still January in UTC.
    await entry(u, "usage", -100, "2026-01-31T19:00:00Z");
    // 11:00Z on 31 January: 16:30 on 31 January in Kolkata, 00:45 on 1 February in Chatham.
    await entry(u, "usage", -10, "2026-01-31T11:00:00Z");
    const charged = async (m: string, tz: string) => (await rollForward(t.db, monthPeriod(m, tz))).total.charged;
    expect([await charged("2026-01", "UTC"), await charged("2026-02", "UTC")]).toEqual([110, 0]);
    expect([await charged("2026-01", "Asia/Kolkata"), await charged("2026-02", "Asia/Kolkata")]).toEqual([10, 100]);
    expect([await charged("2026-01", "Pacific/Chatham"), await charged("2026-02", "Pacific/Chatham")]).toEqual([0, 110]);
    const kolkataFeb = await rollForward(t.db, monthPeriod("2026-02", "Asia/Kolkata"));
    expect(kolkataFeb.total).toMatchObject({ opening_balance: 990, closing_balance: 890 });
  });

  it("answers a month without balances with the header and a TOTAL row of zeros", async () => {
    const { text, records } = await csvOf("2019-06", "Asia/Kolkata");
    expect(text.split("\n")[0]).toBe("user_id,opening_balance,purchased,granted,charged,deducted,expired,closing_balance,corrections,entries,email");
    expect(records).toEqual([
      { user_id: "TOTAL", opening_balance: "0", purchased: "0", granted: "0", charged: "0", deducted: "0", expired: "0", closing_balance: "0", corrections: "0", entries: "0", email: "" },
    ]);
  });

  it("refuses a bad month or zone by name, as a 400 without rows", async () => {
    const response = (await balancesCsvLoader({ request: requestAs(analyst, "/reports/balances.csv?month=2026-13&tz=Mars/Base"), params: {}, context: {} } as never)) as Response;
    expect(response.status).toBe(400);
    const body = (await response.json()) as { errors: Record<string, string> };
    expect(Object.keys(body.errors).sort()).toEqual(["month", "tz"]);
  });

  it("writes the same CSV from the CLI, to a file and to stdout, and refuses bad options with exit code 2", async () => {
    const { a } = await quarterFixture();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "balances-"));
    const out = path.join(dir, "jan.csv");
    await writeBalancesExport(t.db, { month: "2026-01", tz: "UTC", out });
    const fromFile = fs.readFileSync(out, "utf8");
    let printed = "";
    await writeBalancesExport(t.db, { month: "2026-01", tz: "UTC" }, (text) => { printed += text; });
    expect(printed).toBe(fromFile);
    expect(fromFile).toBe((await csvOf("2026-01", "UTC")).text);
    const records = parse(fromFile, { columns: true }) as CsvRecord[];
    expect(records.map((r) => r.user_id)).toEqual([...records.slice(0, -1).map((r) => r.user_id)].sort().concat("TOTAL"));
    expect(records.find((r) => r.user_id === a)).toMatchObject({ opening_balance: "10000", granted: "5000", charged: "3000", closing_balance: "12000" });
    fs.rmSync(dir, { recursive: true, force: true });
    const errors: string[] = [];
    const original = console.error;
    console.error = (m: string) => errors.push(m);
    try {
      expect(await exportBalances.run(["--month", "2026-1", "--tz", "UTC"])).toBe(2);
      expect(await exportBalances.run(["--month", "2026-01", "--tz", "Nowhere/City"])).toBe(2);
    } finally {
      console.error = original;
    }
    expect(errors[0]).toContain("--month");
    expect(errors[1]).toContain("--tz");
  });

  it("shows the roll-forward on the Reports page with the TOTAL the CSV has", async () => {
    await quarterFixture();
    const page = (await reportsLoader({ request: requestAs(analyst, "/reports?month=2026-01&tz=UTC"), params: {}, context: {} } as never)) as Awaited<ReturnType<typeof reportsLoader>>;
    const { records } = await csvOf("2026-01", "UTC");
    expect(page.balances.owners).toBe(3);
    expect(page.balances.total.closing_balance).toBe(Number(records.at(-1)?.closing_balance));
    expect(page.balances.rows[0]?.charged).toBe(4_000);
    expect(page.balancesHref).toBe("/reports/balances.csv?month=2026-01&tz=UTC");
  });
});

function usageRow(at: string, overrides: Partial<NewTokenUsage>): NewTokenUsage {
  return { user_id: newUser(), action_type: "chat_conversation", model_used: "gpt-4o-mini", tokens_used: 1_000, metadata: "{}", created_at: at, ...overrides };
}

describe("Billing page", () => {
  async function billing(query: string, staff: TestStaff = admin) {
    return (await billingLoader({ request: requestAs(staff, `/billing?${query}`), params: {}, context: {} } as never)) as Awaited<ReturnType<typeof billingLoader>>;
  }

  it("shows money by currency, flows, margin at the average USD price per token, spenders and overdrafts", async () => {
    const [a, b, d] = [newUser(), newUser(), newUser()];
    // Price basis over all time: 2,000 cents for 2,000,000 USD tokens = 0.001 cent per token; EUR is not mixed in.
    await entry(a, "purchase", 1_000_000, "2025-11-01T00:00:00Z", { amountPaidCents: 500, currency: "USD" });
    await entry(a, "purchase", 1_000_000, "2026-03-03T12:00:00Z", { amountPaidCents: 1_500, currency: "USD" });
    await entry(b, "purchase", 500_000, "2026-03-04T12:00:00Z", { amountPaidCents: 999, currency: "EUR" });
    await entry(b, "grant", 10_000, "2026-03-05T12:00:00Z");
    await entry(a, "usage", -30_000, "2026-03-06T12:00:00Z");
    await entry(b, "usage", -600_000, "2026-03-07T12:00:00Z");
    await entry(b, "correction", 100_000, "2026-03-08T12:00:00Z");
    await entry(d, "grant", 100, "2026-02-01T00:00:00Z");
    const overdraftStart = "2026-03-09T12:00:00.000Z";
    await entry(d, "usage", -300, overdraftStart);
    await entry(d, "usage", -50, "2026-03-09T18:00:00Z");
    await sql`DELETE FROM ai_action_token_overrides WHERE action_type IN ('chat_conversation', 'image_generation')`.execute(t.db);
    await t.db.insertInto("ai_action_token_overrides").values({ action_type: "image_generation", token_value: 25 }).execute();
    await t.db.insertInto("token_usage").values([
      usageRow("2026-03-06T10:00:00Z", { tokens_used: 4_000, calculated_cost_cents: 3 }),
      usageRow("2026-03-06T11:00:00Z", { tokens_used: 6_000, calculated_cost_cents: 5 }),
      usageRow("2026-03-06T11:30:00Z", { tokens_used: 900, success: false, calculated_cost_cents: 1 }),
      usageRow("2026-03-07T10:00:00Z", { action_type: "image_generation", model_used: "dall-e-3", tokens_used: 1, calculated_cost_cents: 4 }),
      usageRow("2026-03-07T10:05:00Z", { action_type: "image_generation", model_used: "dall-e-3", tokens_used: 1, calculated_cost_cents: 4 }),
    ]).execute();

    const page = await billing("from=2026-03-01&to=2026-03-31&tz=UTC");
    expect(page.money).toEqual([
      { currency: "USD", purchases: 1, paid_cents: 1_500, tokens: 1_000_000 },
      { currency: "EUR", purchases: 1, paid_cents: 999, tokens: 500_000 },
    ]);
    expect(page.flows).toEqual({ sold: 1_500_000, granted: 10_000, charged: 530_350, deducted: 0, expired: 0 });
    expect(page.pricePerToken).toBeCloseTo(0.001, 12);
    expect(page.priceBasis).toEqual({ paid_cents: 2_000, tokens: 2_000_000 });
    // chat: 10,000 successful tokens (the failed call's 900 are not charged) → 10 cents of value, 9 cents of cost (failed call included).
    const chat = page.byType.find((r) => r.key === "chat_conversation");
    expect(chat).toEqual({ key: "chat_conversation", calls: 3, charged_tokens: 10_000, value_cents: 10, cost_cents: 9, margin_cents: 1 });
    // image: 2 calls at the override of 25 tokens = 50 tokens = 0.05 cents, against 8 cents of cost.
    const image = page.byType.find((r) => r.key === "image_generation");
    expect(image).toEqual({ key: "image_generation", calls: 2, charged_tokens: 50, value_cents: 0.05, cost_cents: 8, margin_cents: -7.95 });
    expect(page.byModel.map((r) => [r.key, r.charged_tokens])).toEqual([["gpt-4o-mini", 10_000], ["dall-e-3", 50]]);
    expect(page.totalCostCents).toBe(17);
    expect(page.topSpenders.map((s) => [s.user_id, s.charged, s.paid_cents])).toEqual([[b, 500_000, 0], [a, 30_000, 1_500], [d, 350, 0]]);
    expect(page.overdrawn).toEqual([{ user_id: d, email: null, balance: -250, since: overdraftStart }]);
    // Liability: 1,000,100 before March, then each day's net change.
    expect(page.liability[0]).toEqual({ date: "2026-03-01", outstanding: 1_000_100, change: 0 });
    expect(page.liability.find((l) => l.date === "2026-03-07")).toEqual({ date: "2026-03-07", outstanding: 2_000_100 + 500_000 + 10_000 - 30_000 - 600_000, change: -600_000 });
    expect(page.outstanding).toBe(balances.get(a)! + balances.get(b)! + balances.get(d)!);
  });

  it("answers an empty range with zeros and no price, and a bad range by name", async () => {
    const page = await billing("from=2020-01-01&to=2020-01-31&tz=Asia/Kolkata", analyst);
    expect(page.money).toEqual([]);
    expect(page.flows).toEqual({ sold: 0, granted: 0, charged: 0, deducted: 0, expired: 0 });
    expect(page.pricePerToken).toBeNull();
    expect(page.liability).toHaveLength(31);
    const bad = await billing("from=2020-02-10&to=2020-01-01&tz=UTC").catch((e: unknown) => e);
    expect((bad as { init?: { status?: number } }).init?.status).toBe(400);
  });
});

describe("support view", () => {
  it("explains a balance: running balance per day, upcoming expiries and the overdraft's start", async () => {
    const support = await staffSession(t.db, "support");
    const u = newUser();
    const now = Date.now();
    const iso = (daysAgo: number) => new Date(now - daysAgo * 86_400_000).toISOString();
    await entry(u, "purchase", 1_000, iso(40), { amountPaidCents: 100, currency: "USD" });
    await entry(u, "grant", 500, iso(5), { expiresAt: new Date(now + 10 * 86_400_000), remaining: 500 });
    await entry(u, "usage", -1_200, iso(4));
    await entry(u, "expiry", -100, iso(3));
    await entry(u, "usage", -400, iso(2));
    const page = (await userLoader({ request: requestAs(support, `/users/${u}?tz=UTC`), params: { userId: u }, context: {} } as never)) as Awaited<ReturnType<typeof userLoader>>;
    const history = page.history;
    if (!history) throw new Error("support sees the ledger");
    expect(history.opening).toBe(1_000);
    const last = history.days.at(-1);
    expect(last?.balance).toBe(-200);
    const day = (daysAgo: number) => history.days.find((d) => d.date === iso(daysAgo).slice(0, 10));
    expect(day(5)).toMatchObject({ granted: 500, balance: 1_500 });
    expect(day(4)).toMatchObject({ charged: 1_200, balance: 300 });
    expect(day(3)).toMatchObject({ expired: 100, balance: 200 });
    expect(day(2)).toMatchObject({ charged: 400, balance: -200 });
    expect(history.upcoming).toHaveLength(1);
    expect(history.upcoming[0]).toMatchObject({ remaining: 500, amount: 500 });
    expect(history.overdraft).toEqual({ balance: -200, since: iso(2) });
  });

  it("shows no running balance to an analyst, who does not read the ledger", async () => {
    const u = newUser();
    await entry(u, "grant", 10, "2026-01-01T00:00:00Z");
    const page = (await userLoader({ request: requestAs(analyst, `/users/${u}`), params: { userId: u }, context: {} } as never)) as Awaited<ReturnType<typeof userLoader>>;
    expect(page.history).toBeNull();
  });
});
