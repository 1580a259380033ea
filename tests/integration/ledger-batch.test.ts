import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type DbHandle } from "../../db/database";
import { freePort } from "../../db/embedded";
import { LedgerBatcher, ledgerBatcher, type SimpleAdjustment } from "~/models/ledger-batch.server";
import { adjustBalance, getBalance, type AdjustmentOutcome } from "~/models/ledger.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

const actor = { id: null, label: "batch test" };
const key = () => `k-${randomUUID()}`;
/** Text that array literals must quote and escape, passed through the batch's text[] parameters. */
const ODD_REASON = 'NULL, {"forced"} \\ back\\slash, \'quote\', ünï — 💸';

async function entries(userId: string) {
  return t.db.selectFrom("ledger_entries").selectAll().where("user_id", "=", userId).orderBy("id").execute();
}

async function auditCount(userId: string): Promise<number> {
  const row = await t.db.selectFrom("audit_log").select(sql<number>`count(*)::int`.as("n")).where("target_id", "=", userId).executeTakeFirstOrThrow();
  return row.n;
}

describe("batched adjustments", () => {
  it("writes concurrent adjustments in one statement with each one's own rules", async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const expiring = key();
    await adjustBalance(t.db, actor, { userId: c, kind: "grant", amount: 100, reason: "promo", idempotencyKey: expiring, expiresAt: new Date(Date.now() + 86_400_000) });
    const repeated = key();
    const before = { ...ledgerBatcher(t.db).stats };
    // The first goes at once; the rest arrive while it is in the database and go as one batch.
    const outcomes = await Promise.all([
      adjustBalance(t.db, actor, { userId: a, kind: "grant", amount: 500, reason: "first", idempotencyKey: key() }),
      adjustBalance(t.db, actor, { userId: b, kind: "grant", amount: 50, reason: "b", idempotencyKey: repeated }),
      adjustBalance(t.db, actor, { userId: a, kind: "deduct", amount: 200, reason: "then", idempotencyKey: key() }),
      adjustBalance(t.db, actor, { userId: b, kind: "grant", amount: 50, reason: "b", idempotencyKey: repeated }),
      adjustBalance(t.db, actor, { userId: a, kind: "deduct", amount: 400, reason: "too much", idempotencyKey: key() }),
      adjustBalance(t.db, actor, { userId: c, kind: "deduct", amount: 30, reason: "from the promo", idempotencyKey: key() }),
      adjustBalance(t.db, actor, { userId: b, kind: "deduct", amount: 80, reason: ODD_REASON, idempotencyKey: key(), force: true }),
    ]);
    const stats = ledgerBatcher(t.db).stats;
    expect(stats.batches - before.batches).toBeGreaterThanOrEqual(1);
    expect(stats.batched - before.batched).toBeGreaterThanOrEqual(6);

    expect(outcomes.map((o) => o.status)).toEqual(["applied", "applied", "applied", "replay", "insufficient", "applied", "applied"]);
    // The user twice in the batch: the deduction saw the grant before it, the refusal saw both.
    expect(await getBalance(t.db, a)).toBe(300);
    expect(outcomes[4]).toMatchObject({ status: "insufficient", balance: 300 });
    // The repeated key: one entry, the second answer is the first's.
    const bEntries = await entries(b);
    expect(bEntries.map((e) => e.amount)).toEqual([50, -80]);
    expect(outcomes[3]).toMatchObject({ status: "replay", entry: { id: bEntries[0]?.id } });
    expect(bEntries[1]).toMatchObject({ balance_after: -30, forced: true, reason: ODD_REASON });
    // A user with an open expiring grant takes the general path, which consumes the grant.
    const cEntries = await entries(c);
    expect(cEntries.map((e) => [e.amount, e.remaining])).toEqual([[100, 70], [-30, null]]);
    // Each written entry has its audit row.
    expect([await auditCount(a), await auditCount(b), await auditCount(c)]).toEqual([2, 2, 2]);
  });

  it("runs a failed batch's adjustments one by one: the good ones are written, the bad one gets its error", async () => {
    const batcher = new LedgerBatcher(t.db);
    const [a, b] = [randomUUID(), randomUUID()];
    const adjustment = (userId: string, amount: number, kind = "grant"): SimpleAdjustment =>
      ({ actor, userId, kind: kind as SimpleAdjustment["kind"], amount, reason: "x", idempotencyKey: key(), allowNegative: false });
    const first = batcher.write(adjustment(a, 1));
    const rest = [batcher.write(adjustment(a, 10)), batcher.write(adjustment(b, 5, "bogus")), batcher.write(adjustment(b, 20))];
    await first;
    const settled = await Promise.allSettled(rest);
    expect(batcher.stats).toEqual({ batches: 1, batched: 3, failedBatches: 1 });
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ constraint: "ledger_entries_kind_check" });
    expect((await entries(a)).map((e) => e.amount)).toEqual([1, 10]);
    expect((await entries(b)).map((e) => e.amount)).toEqual([20]);
    expect([await getBalance(t.db, a), await getBalance(t.db, b), await auditCount(b)]).toEqual([11, 20, 1]);
  });
});

describe("batched adjustments without a database", () => {
  it("answer every waiting adjustment with the connection error instead of hanging", async () => {
    const down = createDb(`postgres://postgres:x@127.0.0.1:${await freePort()}/none`, 2);
    try {
      const batcher = new LedgerBatcher(down.db);
      const adjustment = (): SimpleAdjustment => ({ actor, userId: randomUUID(), kind: "grant", amount: 1, reason: "x", idempotencyKey: key(), allowNegative: false });
      const settled = await Promise.allSettled([batcher.write(adjustment()), batcher.write(adjustment()), batcher.write(adjustment())]);
      expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(settled.map((s) => (s as PromiseRejectedResult).reason)).toEqual(settled.map(() => expect.objectContaining({ code: "ECONNREFUSED" })));
      // The first went alone; the two that waited went as one batch, which failed and was retried one by one.
      expect(batcher.stats).toEqual({ batches: 1, batched: 2, failedBatches: 1 });
      // The batcher is free again: the next adjustment is tried (and refused) too.
      await expect(batcher.write(adjustment())).rejects.toMatchObject({ code: "ECONNREFUSED" });
    } finally {
      await down.db.destroy();
    }
  });
});

describe("batched adjustments under concurrency", () => {
  const PROCESSES = 4;
  const CLIENTS_PER_PROCESS = 16;
  const OPS_PER_CLIENT = 10;
  const START = 1_000;
  let processes: DbHandle[];
  beforeAll(() => {
    // Four handles with pools of eight: four app processes, each batching its own requests.
    processes = Array.from({ length: PROCESSES }, () => createDb(t.url, 8));
  });
  afterAll(async () => Promise.all(processes.map((p) => p.db.destroy())));

  it("64 clients over 4 processes and 3 users keep every user's balance = sum of ledger = start + accepted grants - accepted deductions", async () => {
    const users = [randomUUID(), randomUUID(), randomUUID()];
    for (const user of users) await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: START, reason: "start", idempotencyKey: `start-${user}` });
    // Keys sent by clients of every process: each must apply exactly once.
    const shared = Array.from({ length: 12 }, (_, i) => ({ user: users[i % 3] as string, key: `shared-${i}-${users[0]}`, kind: i % 2 ? ("deduct" as const) : ("grant" as const), amount: 41 + i }));
    const outcomes: { user: string; key: string; kind: "grant" | "deduct"; amount: number; outcome: AdjustmentOutcome }[] = [];
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    await Promise.all(
      processes.flatMap(({ db }) =>
        Array.from({ length: CLIENTS_PER_PROCESS }, async () => {
          for (let i = 0; i < OPS_PER_CLIENT; i++) {
            const pick = random();
            const op = pick < 0.2 ? shared[Math.floor(random() * shared.length)]! : { user: users[Math.floor(random() * 3)] as string, key: key(), kind: pick < 0.55 ? ("grant" as const) : ("deduct" as const), amount: 1 + Math.floor(random() * 300) };
            const outcome = await adjustBalance(db, actor, { userId: op.user, kind: op.kind, amount: op.amount, reason: "load", idempotencyKey: op.key });
            outcomes.push({ ...op, outcome });
          }
        }),
      ),
    );

    expect(outcomes).toHaveLength(PROCESSES * CLIENTS_PER_PROCESS * OPS_PER_CLIENT);
    expect(outcomes.every((o) => o.outcome.status !== "key_conflict")).toBe(true);
    for (const user of users) {
      const applied = outcomes.filter((o) => o.user === user && o.outcome.status === "applied");
      const net = applied.reduce((s, o) => s + (o.kind === "grant" ? o.amount : -o.amount), 0);
      const ledger = await t.db
        .selectFrom("ledger_entries")
        .select([sql<number>`sum(amount)::bigint`.as("sum"), sql<number>`count(*)::int`.as("n"), sql<number>`min(balance_after)::bigint`.as("min")])
        .where("user_id", "=", user)
        .executeTakeFirstOrThrow();
      const balance = await getBalance(t.db, user);
      expect(balance).toBe(START + net);
      expect(ledger.sum).toBe(balance);
      expect(ledger.min).toBeGreaterThanOrEqual(0);
      expect(ledger.n).toBe(applied.length + 1);
      expect(await auditCount(user)).toBe(ledger.n);
    }
    for (const s of shared) {
      const answers = outcomes.filter((o) => o.key === s.key && (o.outcome.status === "applied" || o.outcome.status === "replay"));
      expect(answers.filter((o) => o.outcome.status === "applied").length).toBeLessThanOrEqual(1);
      expect(new Set(answers.map((o) => (o.outcome as { entry: { id: number } }).entry.id)).size).toBeLessThanOrEqual(1);
    }
    // The load really went in batches, and replays and refusals happened.
    const stats = processes.map((p) => ledgerBatcher(p.db).stats);
    expect(stats.reduce((s, x) => s + x.batched, 0)).toBeGreaterThan(PROCESSES * CLIENTS_PER_PROCESS);
    expect(outcomes.some((o) => o.outcome.status === "replay")).toBe(true);
    expect(outcomes.some((o) => o.outcome.status === "insufficient")).toBe(true);
    console.log(`batched concurrency: ${outcomes.length} requests, ${stats.map((x) => `${x.batched} in ${x.batches} batches (${x.failedBatches} failed)`).join("; ")}`);
  });
});
