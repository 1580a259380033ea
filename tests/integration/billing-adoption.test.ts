import fs from "node:fs";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareDatabase } from "../../db/setup";
import { adoptBillingOnce, adoptionWatermark } from "../../app/models/billing-adoption.server";
import { reconciliationPage, reconciliationRows } from "../../app/models/billing-reconciliation.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession } from "../support/staff";
import { loader as csvLoader } from "../../app/routes/billing.reconciliation.csv/route";

/**
 * A seed app database with every kind of token_transactions row, adopted on first start. The
 * expected ledger of each user is the replay worked by hand (comments), not recomputed.
 */
let t: TestDatabase;

const A = "a0000000-0000-4000-8000-00000000000a";
const B = "a0000000-0000-4000-8000-00000000000b";
const C = "a0000000-0000-4000-8000-00000000000c"; // household admin
const D = "a0000000-0000-4000-8000-00000000000d"; // active member sharing tokens
const E = "a0000000-0000-4000-8000-00000000000e"; // removed member
const F = "a0000000-0000-4000-8000-00000000000f"; // pending member
const G = "a0000000-0000-4000-8000-000000000010"; // overdrawn before a negative-stored grant
const H = "b0000000-0000-4000-8000-000000000001";

const tx = (id: number) => `c0000000-0000-4000-8000-${String(id).padStart(12, "0")}`;

async function seedRows(): Promise<void> {
  await sql.raw(fs.readFileSync("tests/fixtures/seed-app-schema.sql", "utf8")).execute(t.db);
  await sql.raw(fs.readFileSync("tests/fixtures/seed-billing-schema.sql", "utf8")).execute(t.db);
  await sql`INSERT INTO public.ai_action_token_overrides (action_type, token_value) VALUES ('image_generation', 25)`.execute(t.db);
  await sql`
    INSERT INTO public.token_transactions (id, user_id, action_type, tokens_used, tokens_remaining, created_at, expires_at, amount_paid_cents, currency, notes) VALUES
      (${tx(1)}, ${A}, 'subscription_grant', -1000, 0, '2025-01-01T00:00Z', '2025-02-01T00:00Z', NULL, NULL, 'Monthly plan'),
      (${tx(2)}, ${A}, 'token_pack_purchase', 5000, 0, '2025-01-15T00:00Z', NULL, 999, 'USD', NULL),
      (${tx(3)}, ${A}, 'chat', 400, 0, '2025-01-10T12:00Z', NULL, NULL, NULL, NULL),
      (${tx(4)}, ${A}, 'admin_deduct', 200, 0, '2025-02-10T00:00Z', NULL, NULL, NULL, 'Refund reversal'),
      (${tx(5)}, ${A}, 'manual_adjustment', 50, 0, '2025-02-11T00:00Z', NULL, NULL, NULL, NULL),
      (${tx(6)}, ${A}, 'manual_adjustment', -300, 0, '2025-02-12T00:00Z', NULL, NULL, NULL, NULL),
      (${tx(7)}, ${B}, 'admin_grant', 1000, 0, '2024-12-01T00:00Z', '2025-01-01T00:00Z', NULL, NULL, NULL),
      (${tx(8)}, ${B}, 'trial_grant', 2000, 0, '2025-03-01T00:00Z', '2099-01-01T00:00Z', NULL, NULL, NULL),
      (${tx(9)}, ${B}, 'renewal_grant', -3000, 0, '2025-03-02T00:00Z', '2099-06-01T00:00Z', NULL, NULL, NULL),
      (${tx(10)}, ${C}, 'pack_purchase', 10000, 0, '2025-04-01T00:00Z', NULL, 1999, 'EUR', NULL),
      (${tx(11)}, ${D}, 'chat', 3000, 0, '2025-04-02T09:00Z', NULL, NULL, NULL, NULL),
      (${tx(12)}, ${G}, 'subscription_grant', -1000, 0, '2025-05-02T00:00Z', '2025-06-01T00:00Z', NULL, NULL, NULL)`.execute(t.db);
  await sql`
    INSERT INTO public.token_usage (user_id, action_type, model_used, tokens_used, success, created_at) VALUES
      (${A}, 'chat_conversation', 'gpt-4o', 300, true, '2025-01-10T10:00Z'),
      (${A}, 'chat_conversation', 'gpt-4o', 100, true, '2025-01-10T12:00Z'),
      (${A}, 'image_generation', 'dall-e-3', 999, true, '2025-02-05T09:00Z'),
      (${A}, 'chat_conversation', 'gpt-4o', 500, false, '2025-02-05T10:00Z'),
      (${B}, 'blueprint_generation', 'gpt-4o', 2500, true, '2025-03-05T08:00Z'),
      (${D}, 'chat_conversation', 'gpt-4o', 3000, true, '2025-04-02T09:00Z'),
      (${E}, 'chat_conversation', 'gpt-4o', 500, true, '2025-04-02T10:00Z'),
      (${F}, 'chat_conversation', 'gpt-4o', 200, true, '2025-04-03T11:00Z'),
      (${C}, 'chat_conversation', 'gpt-4o', 1000, true, '2025-04-03T12:00Z'),
      (${G}, 'chat_conversation', 'gpt-4o', 800, true, '2025-05-01T10:00Z')`.execute(t.db);
  await sql`INSERT INTO public.households (id, name, admin_user_id, subscription_status, shared_tokens_enabled) VALUES (${H}, 'Rivera household', ${C}, 'active', true)`.execute(t.db);
  await sql`
    INSERT INTO public.household_members (household_id, user_id, role, allow_shared_tokens, status, joined_at, removed_at) VALUES
      (${H}, ${C}, 'admin', true, 'active', '2024-01-01T00:00Z', NULL),
      (${H}, ${D}, 'member', true, 'active', '2024-01-01T00:00Z', NULL),
      (${H}, ${E}, 'member', true, 'removed', '2024-01-01T00:00Z', '2024-06-01T00:00Z'),
      (${H}, ${F}, 'member', true, 'pending', '2024-01-01T00:00Z', NULL)`.execute(t.db);
}

async function ledgerOf(userId: string) {
  const rows = await t.db.selectFrom("ledger_entries")
    .select(["kind", "amount", "balance_after", "remaining", "forced", "source_ref", "amount_paid_cents", "currency", "consumer_id", "created_at"])
    .where("user_id", "=", userId).orderBy("id").execute();
  return rows.map((r) => ({ ...r, amount: Number(r.amount), balance_after: Number(r.balance_after), remaining: r.remaining === null ? null : Number(r.remaining), created_at: new Date(r.created_at as Date).toISOString() }));
}

async function balances() {
  const rows = await t.db.selectFrom("token_balances").select(["user_id", "balance"]).orderBy("user_id").execute();
  return Object.fromEntries(rows.map((r) => [r.user_id, Number(r.balance)]));
}

async function ledgerDigest() {
  const r = await sql<{ n: string; digest: string }>`
    SELECT count(*)::text AS n, md5(string_agg((id, user_id, kind, amount, balance_after, remaining, source_ref, created_at)::text, ',' ORDER BY id)) AS digest
    FROM tokenboard.ledger_entries`.execute(t.db);
  return { ...r.rows[0], balances: await balances() };
}

beforeAll(async () => {
  t = await createTestDatabase({ empty: true });
  await seedRows();
});
afterAll(async () => t.drop());

describe("adopting the seed's billing tables on first start", () => {
  it("replays each balance in time order: grants, purchases, deductions, expiries and daily usage charges", async () => {
    const prepared = await prepareDatabase(t.db);
    expect(prepared.billingAdoption).toMatchObject({ transactions: 10, legacyUsageCopies: 2, usageRows: 9, usageDays: 8, entries: 21, balances: 6 });

    // A: a negative-stored subscription grant (1000, expiring) pays Jan 10's usage (400); 600 expire on Feb 1;
    // image_generation is charged at its override (25), the failed call not at all; the legacy chat copy is not charged.
    expect(await ledgerOf(A)).toEqual([
      { kind: "grant", amount: 1000, balance_after: 1000, remaining: 0, forced: false, source_ref: `token_transactions:${tx(1)}`, amount_paid_cents: null, currency: null, consumer_id: null, created_at: "2025-01-01T00:00:00.000Z" },
      { kind: "usage", amount: -400, balance_after: 600, remaining: null, forced: false, source_ref: `token_usage:2025-01-10:${A}`, amount_paid_cents: null, currency: null, consumer_id: A, created_at: "2025-01-10T12:00:00.000Z" },
      { kind: "purchase", amount: 5000, balance_after: 5600, remaining: null, forced: false, source_ref: `token_transactions:${tx(2)}`, amount_paid_cents: 999, currency: "USD", consumer_id: null, created_at: "2025-01-15T00:00:00.000Z" },
      { kind: "expiry", amount: -600, balance_after: 5000, remaining: null, forced: false, source_ref: null, amount_paid_cents: null, currency: null, consumer_id: null, created_at: "2025-02-01T00:00:00.000Z" },
      { kind: "usage", amount: -25, balance_after: 4975, remaining: null, forced: false, source_ref: `token_usage:2025-02-05:${A}`, amount_paid_cents: null, currency: null, consumer_id: A, created_at: "2025-02-05T09:00:00.000Z" },
      { kind: "deduct", amount: -200, balance_after: 4775, remaining: null, forced: false, source_ref: `token_transactions:${tx(4)}`, amount_paid_cents: null, currency: null, consumer_id: null, created_at: "2025-02-10T00:00:00.000Z" },
      { kind: "deduct", amount: -50, balance_after: 4725, remaining: null, forced: false, source_ref: `token_transactions:${tx(5)}`, amount_paid_cents: null, currency: null, consumer_id: null, created_at: "2025-02-11T00:00:00.000Z" },
      { kind: "grant", amount: 300, balance_after: 5025, remaining: null, forced: false, source_ref: `token_transactions:${tx(6)}`, amount_paid_cents: null, currency: null, consumer_id: null, created_at: "2025-02-12T00:00:00.000Z" },
    ]);
    const usageReason = await t.db.selectFrom("ledger_entries").select("reason").where("source_ref", "=", `token_usage:2025-01-10:${A}`).executeTakeFirstOrThrow();
    expect(usageReason.reason).toBe("usage of 2025-01-10: 2 calls");

    // B: an admin grant expires unused; usage spends the trial grant (expires first) then 500 of the negative-stored renewal.
    const b = await ledgerOf(B);
    expect(b.map((e) => [e.kind, e.amount, e.balance_after, e.remaining, e.created_at])).toEqual([
      ["grant", 1000, 1000, 0, "2024-12-01T00:00:00.000Z"],
      ["expiry", -1000, 0, null, "2025-01-01T00:00:00.000Z"],
      ["grant", 2000, 2000, 0, "2025-03-01T00:00:00.000Z"],
      ["grant", 3000, 5000, 2500, "2025-03-02T00:00:00.000Z"],
      ["usage", -2500, 2500, null, "2025-03-05T08:00:00.000Z"],
    ]);

    // Household: D (active, sharing) spends C's purchase; E (removed) and F (pending) pay themselves, into overdraft.
    const c = await ledgerOf(C);
    expect(c.map((e) => [e.kind, e.amount, e.balance_after, e.consumer_id, e.amount_paid_cents, e.currency])).toEqual([
      ["purchase", 10000, 10000, null, 1999, "EUR"],
      ["usage", -3000, 7000, D, null, null],
      ["usage", -1000, 6000, C, null, null],
    ]);
    expect(await ledgerOf(D)).toEqual([]);
    expect((await ledgerOf(E)).map((e) => [e.kind, e.amount, e.balance_after, e.forced])).toEqual([["usage", -500, -500, true]]);
    expect((await ledgerOf(F)).map((e) => [e.kind, e.amount, e.balance_after, e.forced])).toEqual([["usage", -200, -200, true]]);

    // G: overdrawn by 800, then a 1000 grant pays the debt first (200 left of it), and those 200 expire.
    expect((await ledgerOf(G)).map((e) => [e.kind, e.amount, e.balance_after, e.remaining, e.forced])).toEqual([
      ["usage", -800, -800, null, true],
      ["grant", 1000, 200, 0, false],
      ["expiry", -200, 0, null, false],
    ]);

    expect(await balances()).toEqual({ [A]: 5025, [B]: 2500, [C]: 6000, [E]: -500, [F]: -200, [G]: 0 });
  });

  it("names each adopted row once and leaves the legacy usage copies out", async () => {
    const refs = await t.db.selectFrom("ledger_entries").select("source_ref").where("source_ref", "like", "token_transactions:%").orderBy("source_ref").execute();
    expect(refs.map((r) => r.source_ref)).toEqual([1, 2, 4, 5, 6, 7, 8, 9, 10, 12].map((i) => `token_transactions:${tx(i)}`));
  });

  it("records the watermark: usage written after adoption is queued above it, for the charging job", async () => {
    const mark = await adoptionWatermark(t.db);
    expect(mark).toMatchObject({ rollupQueueWatermark: 0, usageRows: 9, usageMaxCreatedAt: "2025-05-01T10:00:00.000Z" });
    await sql`INSERT INTO public.token_usage (user_id, action_type, model_used, tokens_used) VALUES (${A}, 'chat_conversation', 'gpt-4o', 10)`.execute(t.db);
    const queued = await sql<{ id: string }>`SELECT min(id)::text AS id FROM tokenboard.usage_rollup_queue`.execute(t.db);
    expect(Number(queued.rows[0]?.id)).toBeGreaterThan(mark!.rollupQueueWatermark);
    await sql`DELETE FROM public.token_usage WHERE tokens_used = 10 AND user_id = ${A}`.execute(t.db);
  });

  it("changes nothing when it runs again (start or CLI)", async () => {
    const before = await ledgerDigest();
    expect((await prepareDatabase(t.db)).billingAdoption).toBeNull();
    expect(await adoptBillingOnce(t.db)).toBeNull();
    expect(await ledgerDigest()).toEqual(before);
    const audits = await t.db.selectFrom("audit_log").select("action").where("action", "=", "billing.adopt").execute();
    expect(audits).toHaveLength(1);
  });

  it("reconciles every balance with both seed functions and says why they differ", async () => {
    const rows = await reconciliationRows(t.db, { sort: "user", dir: "asc", show: "all", user: null });
    const summary = Object.fromEntries(rows.map((r) => [r.userId, { balance: r.balance, calculate: r.calculate, get: r.get, copies: r.legacyUsageCopies }]));
    expect(summary).toEqual({
      [A]: { balance: 5025, calculate: 2101, get: 3601, copies: 1 },
      [B]: { balance: 2500, calculate: 0, get: 0, copies: 0 },
      [C]: { balance: 6000, calculate: 0, get: 6000, copies: 0 },
      [D]: { balance: 0, calculate: 0, get: 6000, copies: 1 },
      [E]: { balance: -500, calculate: 0, get: 0, copies: 0 },
      [F]: { balance: -200, calculate: 0, get: 0, copies: 0 },
      [G]: { balance: 0, calculate: 0, get: 0, copies: 0 },
    });
    const byUser = Object.fromEntries(rows.map((r) => [r.userId, r]));
    const tokens = (reasons: { reason: string; tokens: number }[]) => reasons.map((r) => [r.reason.split(":")[0], r.tokens]);

    // A, calculate: 5000 purchased − 1399 raw usage − (200 admin_deduct + 1000 and 300 stored negative) = 2101.
    expect(tokens(byUser[A]!.calculateReasons)).toEqual([
      ["negative-stored grant", 2000], ["manual_adjustment grant", 600], ["deduction ignored", -50], ["expired grant counted", -600], ["usage priced differently", 974],
    ]);
    // A, get: 5000 live positive grants − 1399 = 3601.
    expect(tokens(byUser[A]!.getReasons)).toEqual([
      ["negative-stored grant ignored", 400], ["manual_adjustment grant ignored", 300], ["deduction ignored", -250], ["usage priced differently", 974],
    ]);
    // B: the expired admin grant is counted by calculate; both floor a negative result at 0.
    expect(tokens(byUser[B]!.calculateReasons)).toEqual([["negative-stored grant", 6000], ["expired grant counted", -1000], ["floored at 0", -2500]]);
    expect(tokens(byUser[B]!.getReasons)).toEqual([["negative-stored grant ignored", 3000], ["floored at 0", -500]]);
    // C: calculate ignores pack_purchase and the pool; get sees the pool as tokenboard does.
    expect(tokens(byUser[C]!.calculateReasons)).toEqual([["grant kinds the function does not count (renewal_grant, pack_purchase)", 10000], ["pool", -3000], ["floored at 0", -1000]]);
    expect(byUser[C]!.getReasons).toEqual([]);
    // D: get shows the admin's pool; tokenboard charged D's usage there.
    expect(byUser[D]!.calculateReasons).toEqual([]);
    expect(tokens(byUser[D]!.getReasons)).toEqual([["pool", -6000]]);
    expect(tokens(byUser[E]!.calculateReasons)).toEqual([["floored at 0", -500]]);
    for (const row of rows) {
      const sum = (reasons: { tokens: number }[]) => reasons.reduce((s, r) => s + r.tokens, 0);
      expect(sum(row.calculateReasons)).toBe(row.calculateReasons.length ? row.balance - row.calculate : 0);
      expect(sum(row.getReasons)).toBe(row.getReasons.length ? row.balance - row.get : 0);
    }
  });

  it("sorts, filters and pages in SQL", async () => {
    const page = await reconciliationPage(t.db, { sort: "balance", dir: "desc", show: "differs", user: null, page: 1, pageSize: 2 });
    expect(page.total).toBe(6);
    expect(page.rows.map((r) => r.userId)).toEqual([C, A]);
    const overdrawn = await reconciliationPage(t.db, { sort: "balance", dir: "asc", show: "overdrawn", user: null, page: 1, pageSize: 10 });
    expect(overdrawn.rows.map((r) => r.userId)).toEqual([E, F]);
    const pool = await reconciliationPage(t.db, { sort: "user", dir: "asc", show: "pool", user: null, page: 1, pageSize: 10 });
    expect(pool.rows.map((r) => [r.userId, r.household])).toEqual([[C, "Rivera household"], [D, "Rivera household"]]);
    const one = await reconciliationPage(t.db, { sort: "user", dir: "asc", show: "all", user: "A0000000-0000-4000-8000-00000000000B", page: 1, pageSize: 10 });
    expect(one.rows.map((r) => r.userId)).toEqual([B]);
  });

  it("downloads the reconciliation as CSV for the page's filter, and refuses a bad filter naming the field", async () => {
    const analyst = await staffSession(t.db, "analyst");
    const response = (await csvLoader({ request: requestAs(analyst, "http://localhost/billing/reconciliation.csv?show=pool&sort=user&dir=asc"), params: {}, context: {} })) as Response;
    expect(response.status).toBe(200);
    const lines = (await response.text()).trim().split("\n");
    expect(lines[0]).toBe("user_id,email,household,tokenboard_balance,calculate_token_balance,calculate_difference_reasons,get_user_token_balance,get_difference_reasons,legacy_usage_copies");
    expect(lines).toHaveLength(3);
    expect(lines[1]).toBe(`${C},,Rivera household,6000,0,"grant kinds the function does not count (renewal_grant, pack_purchase): 10,000 (+10000); pool: tokenboard charges this user's usage to the household admin (0) and members' usage to this balance (3,000) (-3000); floored at 0: the function never shows an overdraft (it computes -1,000) (-1000)",6000,,0`);
    expect(lines[2]).toMatch(new RegExp(`^${D},,Rivera household,0,0,,6000,pool: the function shows the household pool of ${C} .*\\(-6000\\),1$`));
    const bad = (await csvLoader({ request: requestAs(analyst, "http://localhost/billing/reconciliation.csv?sort=bogus"), params: {}, context: {} })) as Response;
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/^sort must be one of/);
  });
});
