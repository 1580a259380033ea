import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "~/models/audit.server";
import { chargesOfUsage } from "~/models/charging.server";
import { adjustBalance, expireDueGrants, getBalance } from "~/models/ledger.server";
import { runRollup } from "~/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

const actor = { id: null, label: "test" };
const key = () => `k-${randomUUID()}`;

async function ledgerSum(userId: string): Promise<number> {
  const row = await t.db.selectFrom("ledger_entries").select(sql<number>`COALESCE(sum(amount), 0)::bigint`.as("s")).where("user_id", "=", userId).executeTakeFirstOrThrow();
  return row.s;
}

describe("ledger adjustments", () => {
  it("gives a user with no entries a balance of 0", async () => {
    expect(await getBalance(t.db, randomUUID())).toBe(0);
  });

  it("writes the entry, the balance and the audit row together", async () => {
    const user = randomUUID();
    const result = await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 500, reason: "welcome", idempotencyKey: key() });
    expect(result.status).toBe("applied");
    expect(await getBalance(t.db, user)).toBe(500);
    const audit = await t.db.selectFrom("audit_log").selectAll().where("target_id", "=", user).execute();
    expect(audit.map((a) => a.action)).toEqual(["ledger.grant"]);
    expect(audit[0]?.reason).toBe("welcome");
  });

  it("refuses a deduction below zero and changes nothing", async () => {
    const user = randomUUID();
    await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 100, reason: "start", idempotencyKey: key() });
    const result = await adjustBalance(t.db, actor, { userId: user, kind: "deduct", amount: 101, reason: "too much", idempotencyKey: key() });
    expect(result.status).toBe("insufficient");
    expect(result.status === "insufficient" && result.message).toMatch(/has 100 tokens/);
    expect(await getBalance(t.db, user)).toBe(100);
    expect(await ledgerSum(user)).toBe(100);
  });

  it("lets a forced deduction go below zero and marks the entry forced", async () => {
    const user = randomUUID();
    const result = await adjustBalance(t.db, actor, { userId: user, kind: "deduct", amount: 40, reason: "chargeback", idempotencyKey: key(), force: true });
    expect(result.status === "applied" && result.entry.forced).toBe(true);
    expect(await getBalance(t.db, user)).toBe(-40);
  });

  it("answers a repeated key with the first result and changes nothing", async () => {
    const user = randomUUID();
    const k = key();
    const first = await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 70, reason: "once", idempotencyKey: k });
    await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 5, reason: "other", idempotencyKey: key() });
    const again = await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 70, reason: "once", idempotencyKey: k });
    expect(again.status).toBe("replay");
    expect(again.status === "replay" && first.status === "applied" && again.entry.id === first.entry.id && again.balance).toBe(70);
    expect(await getBalance(t.db, user)).toBe(75);
  });

  it("applies a key once when it races for two different users", async () => {
    const k = key();
    const [a, b] = await Promise.all([
      adjustBalance(t.db, actor, { userId: randomUUID(), kind: "grant", amount: 9, reason: "race", idempotencyKey: k }),
      adjustBalance(t.db, actor, { userId: randomUUID(), kind: "grant", amount: 9, reason: "race", idempotencyKey: k }),
    ]);
    expect([a.status, b.status].sort()).toEqual(["applied", "key_conflict"]);
    expect(await t.db.selectFrom("ledger_entries").select("id").where("idempotency_key", "=", k).execute()).toHaveLength(1);
  });

  it("refuses a repeated key that names a different adjustment", async () => {
    const k = key();
    await adjustBalance(t.db, actor, { userId: randomUUID(), kind: "grant", amount: 1, reason: "x once", idempotencyKey: k });
    const other = await adjustBalance(t.db, actor, { userId: randomUUID(), kind: "grant", amount: 1, reason: "x once", idempotencyKey: k });
    expect(other.status).toBe("key_conflict");
  });
});

describe("grants that expire", () => {
  it("consumes the soonest-expiring grant first and expires only what is left of it", async () => {
    const user = randomUUID();
    const soon = new Date(Date.now() + 60_000);
    const later = new Date(Date.now() + 3_600_000);
    await adjustBalance(t.db, actor, { userId: user, kind: "purchase", amount: 1_000, reason: "bought", idempotencyKey: key() });
    const late = await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 300, reason: "promo B", idempotencyKey: key(), expiresAt: later });
    const early = await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 200, reason: "promo A", idempotencyKey: key(), expiresAt: soon });
    await adjustBalance(t.db, actor, { userId: user, kind: "deduct", amount: 250, reason: "use", idempotencyKey: key() });
    const remaining = async (id: number) => (await t.db.selectFrom("ledger_entries").select("remaining").where("id", "=", id).executeTakeFirstOrThrow()).remaining;
    if (early.status !== "applied" || late.status !== "applied") throw new Error("grants not applied");
    expect(await remaining(early.entry.id)).toBe(0);
    expect(await remaining(late.entry.id)).toBe(250);
    // Let the later grant lapse and run the job: 250 expire, purchased tokens stay.
    await t.db.updateTable("ledger_entries").set({ expires_at: new Date(Date.now() - 1_000) }).where("id", "=", late.entry.id).execute();
    expect(await expireDueGrants(t.db)).toEqual({ expired: 1, failed: 0 });
    expect(await getBalance(t.db, user)).toBe(1_000 + 500 - 250 - 250);
    const expiry = await t.db.selectFrom("ledger_entries").selectAll().where("user_id", "=", user).where("kind", "=", "expiry").execute();
    expect(expiry.map((e) => [e.amount, e.expired_entry_id])).toEqual([[-250, late.entry.id]]);
    expect(await expireDueGrants(t.db)).toEqual({ expired: 0, failed: 0 });
  });

  it("expires lapsed grants before an adjustment so they cannot be spent", async () => {
    const user = randomUUID();
    await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 100, reason: "old promo", idempotencyKey: key(), expiresAt: new Date(Date.now() - 1_000) });
    const result = await adjustBalance(t.db, actor, { userId: user, kind: "deduct", amount: 50, reason: "use", idempotencyKey: key() });
    expect(result.status).toBe("insufficient");
    expect(await getBalance(t.db, user)).toBe(0);
    expect(await ledgerSum(user)).toBe(0);
  });
});

describe("usage charging", () => {
  it("charges the override where one exists, else tokens_used, once per usage row", async () => {
    const user = randomUUID();
    await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 5_000, reason: "plan", idempotencyKey: key() });
    const rows = await t.db
      .insertInto("token_usage")
      .values([
        { user_id: user, action_type: "image_generation", model_used: "dall-e-3", tokens_used: 9_999, success: true, error_message: null, metadata: "{}" },
        { user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 3_000, success: true, error_message: null, metadata: "{}" },
        { user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 4_000, success: false, error_message: "timeout", metadata: "{}" },
        { user_id: user, action_type: "admin_grant", model_used: "none", tokens_used: 100, success: true, error_message: null, metadata: "{}" },
      ])
      .returning("id")
      .execute();
    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, user)).toBe(5_000 - 25 - 3_000);
    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, user)).toBe(5_000 - 25 - 3_000);
    expect(await ledgerSum(user)).toBe(await getBalance(t.db, user));
    const usage = await t.db.selectFrom("ledger_entries").selectAll().where("user_id", "=", user).where("kind", "=", "usage").execute();
    // One entry for the batch, not one per row.
    expect(usage.map((e) => e.amount)).toEqual([-3_025]);
    expect((await chargesOfUsage(t.db, rows[0]!.id)).map((c) => c.entry_id)).toEqual([usage[0]!.id]);
    expect(await chargesOfUsage(t.db, rows[2]!.id)).toEqual([]);
  });

  // Was: the charge took what was there and left the balance at 0. A usage charge is never refused.
  it("overdraws the balance when a charge exceeds it, and says so", async () => {
    const user = randomUUID();
    await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 1_000, reason: "plan", idempotencyKey: key() });
    await t.db.insertInto("token_usage").values({ user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 4_000, success: true, error_message: null, metadata: "{}" }).execute();
    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, user)).toBe(-3_000);
    const entry = await t.db.selectFrom("ledger_entries").selectAll().where("user_id", "=", user).where("kind", "=", "usage").executeTakeFirstOrThrow();
    expect(entry).toMatchObject({ amount: -4_000, balance_after: -3_000, forced: true, reason: "usage: 1 call, 4,000 tokens" });
    expect(entry.actor_label).toBe(SYSTEM_ACTOR.label);
  });
});

describe("ledger is append-only", () => {
  it("refuses to delete an entry", async () => {
    const user = randomUUID();
    await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: 1, reason: "keep", idempotencyKey: key() });
    await expect(t.db.deleteFrom("ledger_entries").where("user_id", "=", user).execute()).rejects.toThrow(/append-only/);
  });
});
