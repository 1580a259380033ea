import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTION_TYPES } from "~/domain/action-types";
import { chargesOfUsage } from "~/models/charging.server";
import { adjustBalance, expireDueGrants, getBalance, getStoredBalance } from "~/models/ledger.server";
import { runRollup } from "~/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

const support = { id: null, label: "support@test.local" };

async function lapse(entryId: number): Promise<void> {
  await sql`UPDATE tokenboard.ledger_entries SET expires_at = now() - interval '1 second' WHERE id = ${entryId}`.execute(t.db);
}

async function expiringGrant(userId: string, amount: number): Promise<number> {
  const outcome = await adjustBalance(t.db, support, {
    userId, kind: "grant", amount, reason: "trial", idempotencyKey: randomUUID(), expiresAt: new Date(Date.now() + 3_600_000),
  });
  if (outcome.status !== "applied") throw new Error(outcome.status);
  return outcome.entry.id;
}

describe("idempotency keys sent by callers never collide with the system's own entries", () => {
  it("a caller's key that looks like an expiry key does not block that grant's expiry or later adjustments", async () => {
    const user = randomUUID();
    const grantId = await expiringGrant(user, 300);
    const squatter = await adjustBalance(t.db, support, { userId: user, kind: "grant", amount: 10, reason: "lookalike key", idempotencyKey: `expiry:${grantId}` });
    expect(squatter.status).toBe("applied");
    await lapse(grantId);

    const later = await adjustBalance(t.db, support, { userId: user, kind: "grant", amount: 5, reason: "after expiry", idempotencyKey: randomUUID() });
    expect(later.status).toBe("applied");
    expect(await getBalance(t.db, user)).toBe(15);
    const expiries = await t.db.selectFrom("ledger_entries").select(["amount", "expired_entry_id"]).where("user_id", "=", user).where("kind", "=", "expiry").execute();
    expect(expiries).toEqual([{ amount: -300, expired_entry_id: grantId }]);
  });

  it("a caller's key that looks like a usage key does not stop that row being charged", async () => {
    const user = randomUUID();
    await adjustBalance(t.db, support, { userId: user, kind: "grant", amount: 1_000, reason: "start", idempotencyKey: randomUUID() });
    const type = ACTION_TYPES.find((a) => a.category === "ai" && !a.defaultOverride)!.name;
    const usage = await t.db
      .insertInto("token_usage")
      .values({ user_id: user, action_type: type, model_used: "gpt-4o", tokens_used: 120, success: true, created_at: new Date() })
      .returning("id")
      .executeTakeFirstOrThrow();
    await adjustBalance(t.db, support, { userId: user, kind: "grant", amount: 1, reason: "lookalike key", idempotencyKey: `usage:${usage.id}` });
    await runRollup(t.db, { charge: true });
    const charges = await chargesOfUsage(t.db, usage.id);
    expect(charges.map((c) => c.amount)).toEqual([-120]);
    expect(await getBalance(t.db, user)).toBe(881);
  });

  it("the expiry job expires every other user when one user's expiry fails", async () => {
    const broken = randomUUID();
    const healthy = randomUUID();
    const brokenGrant = await expiringGrant(broken, 50);
    const healthyGrant = await expiringGrant(healthy, 70);
    // A failure of one user's expiry: a trigger refuses writes for that user only.
    await sql.raw(`
      CREATE OR REPLACE FUNCTION tokenboard.test_refuse_user() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.user_id = '${broken}'::uuid AND NEW.kind = 'expiry' THEN RAISE EXCEPTION 'refused for test'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER test_refuse_user BEFORE INSERT ON tokenboard.ledger_entries FOR EACH ROW EXECUTE FUNCTION tokenboard.test_refuse_user();
    `).execute(t.db);
    try {
      await lapse(brokenGrant);
      await lapse(healthyGrant);
      const run = await expireDueGrants(t.db);
      expect(run).toMatchObject({ expired: 1, failed: 1 });
      expect(await getBalance(t.db, healthy)).toBe(0);
      // Its expiry entry was not written; the balance read counts the lapsed grant as gone all the same.
      expect(await getStoredBalance(t.db, broken)).toBe(50);
      expect(await getBalance(t.db, broken)).toBe(0);
    } finally {
      await sql.raw(`DROP TRIGGER test_refuse_user ON tokenboard.ledger_entries; DROP FUNCTION tokenboard.test_refuse_user();`).execute(t.db);
    }
  });
});
