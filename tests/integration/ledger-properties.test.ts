import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adjustBalance, expireDueGrants, getBalance, getStoredBalance } from "~/models/ledger.server";
import { runRollup } from "~/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * The consumption rules as a property: any sequence of grants (with or without expiry), the
 * clock passing expiries, usage charges (through the rollup job) and staff deductions leaves the
 * real ledger where a plain replay of the spec's rules, written below, says it must be, and no
 * token is created or lost on the way.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

type Op =
  | { op: "grant"; amount: number; expiresInHours: number | null }
  | { op: "charge"; amount: number }
  | { op: "deduct"; amount: number; force: boolean }
  | { op: "advance"; hours: number }
  | { op: "expireJob" };

// noBias: fast-check leans towards the smallest values, which would make every expiry the same hour.
const int = (min: number, max: number) => fc.noBias(fc.integer({ min, max }));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("grant" as const), amount: int(1, 1_000), expiresInHours: fc.option(int(1, 4), { nil: null }) }),
  fc.record({ op: fc.constant("charge" as const), amount: int(1, 1_200) }),
  fc.record({ op: fc.constant("deduct" as const), amount: int(1, 800), force: fc.boolean() }),
  fc.record({ op: fc.constant("advance" as const), hours: int(1, 3) }),
  fc.constant({ op: "expireJob" as const }),
);

/** The replay: the spec's "Order of consumption", plainly. Hours are the test's clock. */
class Reference {
  balance = 0;
  clock = 0;
  granted = 0;
  charged = 0;
  deducted = 0;
  expired = 0;
  grants: { seq: number; remaining: number; expiresAt: number }[] = [];

  private expireLapsed(): void {
    for (const g of this.grants) {
      if (g.remaining > 0 && g.expiresAt <= this.clock) {
        this.balance -= g.remaining;
        this.expired += g.remaining;
        g.remaining = 0;
      }
    }
  }

  private spend(amount: number): void {
    let left = amount;
    const order = this.grants.filter((g) => g.remaining > 0).sort((a, b) => a.expiresAt - b.expiresAt || a.seq - b.seq);
    for (const g of order) {
      const take = Math.min(g.remaining, left);
      g.remaining -= take;
      left -= take;
    }
    this.balance -= amount;
  }

  grant(seq: number, amount: number, expiresInHours: number | null): void {
    this.expireLapsed();
    if (expiresInHours !== null) {
      const open = this.grants.reduce((s, g) => s + g.remaining, 0);
      const debt = Math.max(0, open - this.balance);
      this.grants.push({ seq, remaining: amount - Math.min(amount, debt), expiresAt: this.clock + expiresInHours });
    }
    this.balance += amount;
    this.granted += amount;
  }

  charge(amount: number): void {
    this.expireLapsed();
    this.spend(amount);
    this.charged += amount;
  }

  /** Answers whether it was applied. */
  deduct(amount: number, force: boolean): boolean {
    this.expireLapsed();
    if (this.balance - amount < 0 && !force) return false;
    this.spend(amount);
    this.deducted += amount;
    return true;
  }

  expireJob(): void {
    this.expireLapsed();
  }

  /** What a read says now: lapsed grants count as gone. */
  exact(): number {
    return this.balance - this.grants.filter((g) => g.expiresAt <= this.clock).reduce((s, g) => s + g.remaining, 0);
  }
}

const actor = { id: null, label: "property" };
const HOUR = 3_600_000;

async function replay(ops: Op[]): Promise<void> {
  const user = randomUUID();
  const ref = new Reference();
  const base = Date.now() + 100 * HOUR;
  // Real grant id → the reference's grant (its seq) and its expiry on the test's clock.
  const expiring = new Map<number, number>();
  for (const op of ops) {
    if (op.op === "grant") {
      const expiresAt = op.expiresInHours === null ? null : new Date(base + (ref.clock + op.expiresInHours) * HOUR);
      const outcome = await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: op.amount, reason: "property grant", idempotencyKey: randomUUID(), expiresAt });
      if (outcome.status !== "applied") throw new Error(`grant ${outcome.status}`);
      ref.grant(outcome.entry.id, op.amount, op.expiresInHours);
      if (op.expiresInHours !== null) expiring.set(outcome.entry.id, ref.clock + op.expiresInHours);
    } else if (op.op === "charge") {
      await t.db.insertInto("token_usage").values({ user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: op.amount, success: true }).execute();
      expect(await getBalance(t.db, user)).toBe(ref.exact() - op.amount);
      await runRollup(t.db, { charge: true });
      ref.charge(op.amount);
    } else if (op.op === "deduct") {
      const outcome = await adjustBalance(t.db, actor, { userId: user, kind: "deduct", amount: op.amount, reason: "property deduct", idempotencyKey: randomUUID(), force: op.force });
      const applied = ref.deduct(op.amount, op.force);
      expect(outcome.status).toBe(applied ? "applied" : "insufficient");
    } else if (op.op === "advance") {
      ref.clock += op.hours;
      // The clock passes: grants due by it get an expires_at in the past.
      const due = [...expiring].filter(([, at]) => at <= ref.clock).map(([id]) => id);
      if (due.length) await sql`UPDATE tokenboard.ledger_entries SET expires_at = now() - interval '1 second' WHERE id = ANY(${due}::bigint[]) AND expires_at > now()`.execute(t.db);
    } else {
      await expireDueGrants(t.db);
      ref.expireJob();
    }

    expect(await getBalance(t.db, user)).toBe(ref.exact());
    const sums = await sql<{ total: number; granted: number; charged: number; deducted: number; expired: number; remaining: number }>`
      SELECT COALESCE(sum(amount), 0)::float8 AS total,
             COALESCE(sum(amount) FILTER (WHERE kind = 'grant'), 0)::float8 AS granted,
             COALESCE(-sum(amount) FILTER (WHERE kind IN ('usage', 'correction')), 0)::float8 AS charged,
             COALESCE(-sum(amount) FILTER (WHERE kind = 'deduct'), 0)::float8 AS deducted,
             COALESCE(-sum(amount) FILTER (WHERE kind = 'expiry'), 0)::float8 AS expired,
             COALESCE(sum(remaining) FILTER (WHERE remaining > 0), 0)::float8 AS remaining
      FROM tokenboard.ledger_entries WHERE user_id = ${user}`.execute(t.db);
    const s = sums.rows[0]!;
    const stored = await getStoredBalance(t.db, user);
    // Never a token created or lost: the balance is the sum of its entries, and each kind adds up.
    expect(stored).toBe(s.total);
    expect(stored).toBe(ref.balance);
    expect([s.granted, s.charged, s.deducted, s.expired]).toEqual([ref.granted, ref.charged, ref.deducted, ref.expired]);
    expect(s.granted - s.charged - s.deducted - s.expired).toBe(stored);
    // What is left of grants is held in the balance: never more than its positive part.
    expect(s.remaining).toBeLessThanOrEqual(Math.max(0, stored));
    // Each grant keeps what the order of consumption leaves it.
    const grants = await t.db.selectFrom("ledger_entries").select(["id", "remaining"]).where("user_id", "=", user).where("remaining", "is not", null).orderBy("id").execute();
    expect(grants.map((g) => [g.id, g.remaining])).toEqual(ref.grants.map((g) => [g.seq, g.remaining]));
  }
}

describe("consumption rules (property)", () => {
  it("any sequence of grants, expiries, charges and deductions matches the reference replay", async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 3, maxLength: 14 }), replay), { numRuns: 40 });
  }, 240_000);
});
