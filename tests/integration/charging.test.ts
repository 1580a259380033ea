import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerApiKey } from "~/lib/auth.server";
import { applyPendingCharges, chargesOfUsage, poolOf } from "~/models/charging.server";
import { adjustBalance, expireDueGrants, getBalance, getStoredBalance } from "~/models/ledger.server";
import { rebuildRollups, runRollup } from "~/models/rollup.server";
import { loader as balanceLoader } from "~/routes/api.v1.balance/route";
import { requestAs } from "../support/staff";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * Usage charging through the real rollup job (decision 016): what is charged, corrections,
 * charging off, exact balances before the job runs, the order of consumption, pools, and the
 * trace from a usage row to its entries.
 */
let t: TestDatabase;
const LEDGER_KEY = "ledger-key-for-charging-01";
beforeAll(async () => {
  t = await createTestDatabase();
  await registerApiKey(t.db, "ledger", "ledger", LEDGER_KEY);
});
afterAll(async () => t.drop());

const actor = { id: null, label: "test" };

async function grant(userId: string, amount: number, expiresAt: Date | null = null): Promise<number> {
  const outcome = await adjustBalance(t.db, actor, { userId, kind: "grant", amount, reason: "plan", idempotencyKey: randomUUID(), expiresAt });
  if (outcome.status !== "applied") throw new Error(outcome.status);
  return outcome.entry.id;
}

interface Row {
  type?: string;
  tokens: number;
  success?: boolean;
}

async function use(userId: string, rows: Row[]): Promise<string[]> {
  const inserted = await t.db
    .insertInto("token_usage")
    .values(rows.map((r) => ({ user_id: userId, action_type: r.type ?? "chat_conversation", model_used: "gpt-4o", tokens_used: r.tokens, success: r.success ?? true, error_message: null, metadata: "{}" })))
    .returning("id")
    .execute();
  return inserted.map((r) => r.id);
}

async function ledgerSum(userId: string): Promise<number> {
  const row = await sql<{ s: number }>`SELECT COALESCE(sum(amount), 0)::bigint AS s FROM tokenboard.ledger_entries WHERE user_id = ${userId}`.execute(t.db);
  return Number(row.rows[0]?.s);
}

async function entries(userId: string) {
  return t.db.selectFrom("ledger_entries").select(["id", "kind", "amount", "balance_after", "reason", "consumer_id"]).where("user_id", "=", userId).orderBy("id").execute();
}

async function apiBalance(userId: string): Promise<number> {
  const request = requestAs(null, `/api/v1/users/${userId}/balance`, { headers: { authorization: `Bearer ${LEDGER_KEY}` } });
  const response = (await balanceLoader({ request, params: { userId }, context: {} })) as Response;
  return ((await response.json()) as { balance: number }).balance;
}

describe("charging usage through the rollup job", () => {
  it("counts usage not charged yet in the balance, then charges it once: overrides, not failed or ledger-category rows", async () => {
    const user = randomUUID();
    await grant(user, 10_000);
    await use(user, [
      { tokens: 1_000 },
      { type: "image_generation", tokens: 9_999 }, // override 25
      { tokens: 500, success: false },
      { type: "admin_grant", tokens: 100 },
    ]);
    expect(await getStoredBalance(t.db, user)).toBe(10_000);
    expect(await getBalance(t.db, user)).toBe(8_975);
    expect(await apiBalance(user)).toBe(8_975);
    await runRollup(t.db, { charge: true });
    await runRollup(t.db, { charge: true });
    expect(await getStoredBalance(t.db, user)).toBe(8_975);
    expect(await apiBalance(user)).toBe(8_975);
    expect((await entries(user)).map((e) => [e.kind, e.amount])).toEqual([["grant", 10_000], ["usage", -1_025]]);
    expect(await ledgerSum(user)).toBe(8_975);
    const audits = await t.db.selectFrom("audit_log").select("action").where("target_id", "=", user).where("action", "=", "ledger.usage").execute();
    expect(audits).toHaveLength(1);
  });

  it("charges nothing with charging off", async () => {
    const user = randomUUID();
    await grant(user, 2_000);
    await use(user, [{ tokens: 700 }]);
    expect(await getBalance(t.db, user, { charge: false })).toBe(2_000);
    await runRollup(t.db, { charge: false });
    expect((await entries(user)).map((e) => e.kind)).toEqual(["grant"]);
    expect(await t.db.selectFrom("pending_charges").select("id").where("payer_id", "=", user).execute()).toEqual([]);
    expect(await getBalance(t.db, user, { charge: false })).toBe(2_000);
  });

  it("corrects edited, flipped and deleted rows with entries that say so, and never charges twice", async () => {
    const user = randomUUID();
    await grant(user, 20_000);
    const [a, b, c] = await use(user, [{ tokens: 1_000 }, { tokens: 2_000 }, { tokens: 3_000 }]);
    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, user)).toBe(14_000);

    await t.db.updateTable("token_usage").set({ tokens_used: 1_500 }).where("id", "=", a!).execute();
    await t.db.updateTable("token_usage").set({ success: false }).where("id", "=", b!).execute();
    await t.db.deleteFrom("token_usage").where("id", "=", c!).execute();
    // A route edit changes no charge: no entry.
    await t.db.updateTable("token_usage").set({ route: "/elsewhere" }).where("id", "=", a!).execute();
    expect(await getBalance(t.db, user)).toBe(18_500);
    await runRollup(t.db, { charge: true });
    expect(await getStoredBalance(t.db, user)).toBe(18_500);

    await t.db.updateTable("token_usage").set({ success: true }).where("id", "=", b!).execute();
    await runRollup(t.db, { charge: true });
    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, user)).toBe(16_500);
    expect(await ledgerSum(user)).toBe(16_500);

    const written = await entries(user);
    expect(written.map((e) => [e.kind, e.amount, e.reason])).toEqual([
      ["grant", 20_000, "plan"],
      ["usage", -6_000, "usage: 3 calls, 6,000 tokens"],
      ["correction", 4_500, "corrected 3 usage rows: refund 4,500 tokens"],
      ["correction", -2_000, "corrected 1 usage row: charge 2,000 tokens"],
    ]);
    const [, charge, refund, recharge] = written.map((e) => e.id);
    expect((await chargesOfUsage(t.db, a!)).map((x) => x.entry_id)).toEqual([charge, refund]);
    expect((await chargesOfUsage(t.db, b!)).map((x) => x.entry_id)).toEqual([charge, refund, recharge]);
    // Deleted: found all the same.
    expect((await chargesOfUsage(t.db, c!)).map((x) => x.entry_id)).toEqual([charge, refund]);
  });

  it("charges a row inserted and edited in one batch once, as a charge; one deleted in the same batch not at all", async () => {
    const user = randomUUID();
    const [a, b] = await use(user, [{ tokens: 100 }, { tokens: 200 }]);
    await t.db.updateTable("token_usage").set({ tokens_used: 150 }).where("id", "=", a!).execute();
    await t.db.deleteFrom("token_usage").where("id", "=", b!).execute();
    expect(await getBalance(t.db, user)).toBe(-150);
    await runRollup(t.db, { charge: true });
    expect((await entries(user)).map((e) => [e.kind, e.amount])).toEqual([["usage", -150]]);
    expect(await chargesOfUsage(t.db, b!)).toEqual([]);
  });

  it("stages the charges of queued rows that a rebuild takes over", async () => {
    const user = randomUUID();
    await use(user, [{ tokens: 40 }, { tokens: 60 }]);
    await rebuildRollups(t.db, { charge: true });
    expect(await t.db.selectFrom("usage_rollup_queue").select("id").where("user_id", "=", user).execute()).toEqual([]);
    expect(await getBalance(t.db, user)).toBe(-100);
    await applyPendingCharges(t.db);
    expect(await getStoredBalance(t.db, user)).toBe(-100);
  });
});

describe("order of consumption", () => {
  it("spends the soonest-expiring grant first, overdraws the permanent part, and the next grant pays the debt first", async () => {
    const user = randomUUID();
    const hour = 3_600_000;
    const later = await grant(user, 1_000, new Date(Date.now() + 2 * hour));
    const sooner = await grant(user, 1_000, new Date(Date.now() + hour));
    await grant(user, 500);
    await use(user, [{ tokens: 1_500 }]);
    await runRollup(t.db, { charge: true });
    const remaining = async (id: number) => (await t.db.selectFrom("ledger_entries").select("remaining").where("id", "=", id).executeTakeFirstOrThrow()).remaining;
    expect([await remaining(sooner), await remaining(later)]).toEqual([0, 500]);

    await use(user, [{ tokens: 2_000 }]);
    await runRollup(t.db, { charge: true });
    expect(await remaining(later)).toBe(0);
    expect(await getBalance(t.db, user)).toBe(-1_000);

    const next = await grant(user, 3_000, new Date(Date.now() + hour));
    expect(await remaining(next)).toBe(2_000);
    expect(await getBalance(t.db, user)).toBe(2_000);
    // Lapsed: gone from the balance read at once, from the stored balance when the expiry is written.
    await sql`UPDATE tokenboard.ledger_entries SET expires_at = now() - interval '1 second' WHERE id = ${next}`.execute(t.db);
    expect(await getBalance(t.db, user)).toBe(0);
    await expireDueGrants(t.db);
    expect(await getStoredBalance(t.db, user)).toBe(0);
    expect(await ledgerSum(user)).toBe(0);
  });

  it("expires what lapsed before charging the rest", async () => {
    const user = randomUUID();
    const g = await grant(user, 1_000, new Date(Date.now() + 3_600_000));
    await grant(user, 300);
    await sql`UPDATE tokenboard.ledger_entries SET expires_at = now() - interval '1 second' WHERE id = ${g}`.execute(t.db);
    await use(user, [{ tokens: 200 }]);
    expect(await getBalance(t.db, user)).toBe(100);
    await runRollup(t.db, { charge: true });
    expect((await entries(user)).map((e) => [e.kind, e.amount, e.balance_after])).toEqual([
      ["grant", 1_000, 1_000],
      ["grant", 300, 1_300],
      ["expiry", -1_000, 300],
      ["usage", -200, 100],
    ]);
  });
});

describe("shared pools", () => {
  async function household(admin: string, members: { user: string; status?: string; share?: boolean }[], shared = true): Promise<string> {
    const h = await t.db.insertInto("households").values({ admin_user_id: admin, name: "The Pool", shared_tokens_enabled: shared }).returning("id").executeTakeFirstOrThrow();
    await t.db
      .insertInto("household_members")
      .values([
        { household_id: h.id, user_id: admin, role: "admin", status: "active", allow_shared_tokens: true },
        ...members.map((m) => ({ household_id: h.id, user_id: m.user, role: "member", status: m.status ?? "active", allow_shared_tokens: m.share ?? true })),
      ])
      .execute();
    return h.id;
  }

  it("charges an active sharing member's usage to the admin's balance, naming the member", async () => {
    const [admin, member, private_, removed] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const id = await household(admin, [{ user: member }, { user: private_, share: false }, { user: removed, status: "removed" }]);
    await grant(admin, 10_000);
    await use(member, [{ tokens: 1_200 }, { tokens: 300 }]);
    await use(admin, [{ tokens: 100 }]);
    await use(private_, [{ tokens: 50 }]);
    await use(removed, [{ tokens: 70 }]);
    expect(await getBalance(t.db, admin)).toBe(10_000 - 1_600);
    expect(await getBalance(t.db, member)).toBe(0);
    await runRollup(t.db, { charge: true });
    expect(await getStoredBalance(t.db, admin)).toBe(8_400);
    expect(await getBalance(t.db, private_)).toBe(-50);
    expect(await getBalance(t.db, removed)).toBe(-70);
    const adminEntries = await entries(admin);
    expect(adminEntries.filter((e) => e.kind === "usage").map((e) => [e.amount, e.consumer_id]).sort()).toEqual([[-100, null], [-1_500, member]].sort());
    expect(await getBalance(t.db, member)).toBe(0);

    const pool = await poolOf(t.db, member);
    expect(pool).toMatchObject({ household_id: id, owner_id: admin, name: "The Pool" });
    expect(pool!.members.map((m) => [m.user_id, m.spent])).toEqual([[member, 1_500], [admin, 100]]);
    expect(await poolOf(t.db, private_)).toBeNull();
  });

  it("charges members themselves when the household does not share tokens", async () => {
    const [admin, member] = [randomUUID(), randomUUID()];
    await household(admin, [{ user: member }], false);
    await use(member, [{ tokens: 10 }]);
    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, member)).toBe(-10);
    expect(await getBalance(t.db, admin)).toBe(0);
  });
});
