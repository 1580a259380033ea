import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyPendingCharges } from "~/models/charging.server";
import { adjustBalance, getBalance, getStoredBalance } from "~/models/ledger.server";
import { runRollup } from "~/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * Many members of one pool charging it at once, while staff grant to it and several rollup
 * runs and apply steps go side by side: every usage row is charged once, to the pool, and the
 * pool's balance is exactly its grants minus its charges, the sum of its entries.
 */
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

const MEMBERS = 10;
const STATEMENTS = 6;
const ROWS_PER_STATEMENT = 5;

describe("a shared pool under concurrent charging", () => {
  it("conserves tokens: balance = Σ entries = grants − charges, each row charged once", async () => {
    const admin = randomUUID();
    const members = Array.from({ length: MEMBERS }, () => randomUUID());
    const h = await t.db.insertInto("households").values({ admin_user_id: admin, shared_tokens_enabled: true }).returning("id").executeTakeFirstOrThrow();
    await t.db
      .insertInto("household_members")
      .values([admin, ...members].map((user_id, i) => ({ household_id: h.id, user_id, role: i === 0 ? "admin" : "member", status: "active", allow_shared_tokens: true })))
      .execute();

    let usedTokens = 0;
    const ingest = members.map(async (member, m) => {
      for (let s = 0; s < STATEMENTS; s++) {
        const rows = Array.from({ length: ROWS_PER_STATEMENT }, (_, r) => 10 + m * 7 + s * 3 + r);
        usedTokens += rows.reduce((a, b) => a + b, 0);
        await t.db.insertInto("token_usage").values(rows.map((tokens) => ({ user_id: member, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: tokens, success: true }))).execute();
      }
    });
    let granted = 0;
    const grants = Array.from({ length: 20 }, async (_, i) => {
      const amount = 100 + i;
      granted += amount;
      const outcome = await adjustBalance(t.db, { id: null, label: "staff" }, {
        userId: admin, kind: "grant", amount, reason: "top up", idempotencyKey: randomUUID(), expiresAt: i % 2 ? new Date(Date.now() + (i + 1) * 3_600_000) : null,
      });
      expect(outcome.status).toBe("applied");
    });
    let stop = false;
    const rollups = Array.from({ length: 3 }, async () => {
      while (!stop) await runRollup(t.db, { charge: true, batchSize: 7 });
    });
    const appliers = Array.from({ length: 3 }, async () => {
      while (!stop) await applyPendingCharges(t.db, { limit: 3 });
    });
    await Promise.all([...ingest, ...grants]);
    stop = true;
    await Promise.all([...rollups, ...appliers]);
    await runRollup(t.db, { charge: true });

    expect(await t.db.selectFrom("pending_charges").select("id").execute()).toEqual([]);
    const sums = await sql<{ total: number; grants: number; charges: number; entries: number }>`
      SELECT sum(amount)::float8 AS total, sum(amount) FILTER (WHERE kind = 'grant')::float8 AS grants,
             (-sum(amount) FILTER (WHERE kind = 'usage'))::float8 AS charges, count(*)::int AS entries
      FROM tokenboard.ledger_entries WHERE user_id = ${admin}`.execute(t.db);
    const s = sums.rows[0]!;
    expect(s.grants).toBe(granted);
    expect(s.charges).toBe(usedTokens);
    const stored = await getStoredBalance(t.db, admin);
    expect(stored).toBe(s.total);
    expect(stored).toBe(granted - usedTokens);
    expect(await getBalance(t.db, admin)).toBe(stored);
    // Each usage row in exactly one charge.
    const traced = await sql<{ n: number; distinct_n: number }>`
      SELECT count(*)::int AS n, count(DISTINCT id)::int AS distinct_n
      FROM tokenboard.usage_charge_traces t, unnest(t.usage_ids) id WHERE t.consumer_id = ANY(${members}::uuid[])`.execute(t.db);
    expect(traced.rows[0]).toEqual({ n: MEMBERS * STATEMENTS * ROWS_PER_STATEMENT, distinct_n: MEMBERS * STATEMENTS * ROWS_PER_STATEMENT });
    // An audit row with every entry.
    const audits = await t.db.selectFrom("audit_log").select(sql<number>`count(*)::int`.as("n")).where("target_id", "=", admin).executeTakeFirstOrThrow();
    expect(audits.n).toBe(s.entries);
    const open = await sql<{ remaining: number }>`SELECT COALESCE(sum(remaining), 0)::float8 AS remaining FROM tokenboard.ledger_entries WHERE user_id = ${admin} AND remaining > 0`.execute(t.db);
    expect(open.rows[0]!.remaining).toBeLessThanOrEqual(Math.max(0, stored));
    // Nothing charged to the members themselves.
    expect(await t.db.selectFrom("ledger_entries").select("id").where("user_id", "in", members).execute()).toEqual([]);
  }, 120_000);
});
