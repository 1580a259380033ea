import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createDb, type DbHandle } from "../../db/database";
import { adjustBalance, getBalance, type AdjustmentOutcome } from "~/models/ledger.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

const CLIENTS = 64;
const OPS_PER_CLIENT = 12;
const START = 2_000;

let t: TestDatabase;
let clients: DbHandle[];
beforeAll(async () => {
  t = await createTestDatabase();
  // 64 separate pools of one connection each: 64 real sessions contending for one row.
  clients = Array.from({ length: CLIENTS }, () => createDb(t.url, 1));
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.db.destroy()));
  await t.drop();
});

/** A deterministic pseudo-random sequence, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed;
  return () => ((s = (s * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
}

it("64 concurrent clients mixing grants, deductions and repeated keys keep balance = sum of ledger = start + accepted grants - accepted deductions", async () => {
  const user = randomUUID();
  const actor = { id: null, label: "concurrency" };
  await adjustBalance(t.db, actor, { userId: user, kind: "grant", amount: START, reason: "start", idempotencyKey: `start-${user}` });
  // A few keys shared by many clients: each must apply exactly once.
  const shared = Array.from({ length: 8 }, (_, i) => ({ key: `shared-${i}-${user}`, kind: i % 2 ? ("deduct" as const) : ("grant" as const), amount: 37 + i }));

  const outcomes: { key: string; kind: "grant" | "deduct"; amount: number; outcome: AdjustmentOutcome }[] = [];
  await Promise.all(
    clients.map(async ({ db }, c) => {
      const random = rng(c + 1);
      for (let i = 0; i < OPS_PER_CLIENT; i++) {
        const pick = random();
        const op = pick < 0.25 ? shared[Math.floor(random() * shared.length)]! : { key: `c${c}-${i}-${user}`, kind: pick < 0.55 ? ("grant" as const) : ("deduct" as const), amount: 1 + Math.floor(random() * 400) };
        const outcome = await adjustBalance(db, actor, { userId: user, kind: op.kind, amount: op.amount, reason: "load", idempotencyKey: op.key });
        outcomes.push({ ...op, outcome });
      }
    }),
  );

  const applied = outcomes.filter((o) => o.outcome.status === "applied");
  const grants = applied.filter((o) => o.kind === "grant").reduce((s, o) => s + o.amount, 0);
  const deductions = applied.filter((o) => o.kind === "deduct").reduce((s, o) => s + o.amount, 0);
  const ledger = await t.db
    .selectFrom("ledger_entries")
    .select([sql<number>`sum(amount)::bigint`.as("sum"), sql<number>`count(*)::bigint`.as("n"), sql<number>`min(balance_after)::bigint`.as("min"), sql<number>`count(DISTINCT idempotency_key)::bigint`.as("keys")])
    .where("user_id", "=", user)
    .executeTakeFirstOrThrow();
  const balance = await getBalance(t.db, user);

  expect(outcomes).toHaveLength(CLIENTS * OPS_PER_CLIENT);
  expect(outcomes.every((o) => o.outcome.status !== "key_conflict")).toBe(true);
  expect(balance).toBe(START + grants - deductions);
  expect(ledger.sum).toBe(balance);
  expect(ledger.min).toBeGreaterThanOrEqual(0);
  // One entry per applied key plus the start grant; every shared key applied at most once.
  expect(ledger.n).toBe(applied.length + 1);
  expect(ledger.keys).toBe(ledger.n);
  for (const s of shared) {
    const forKey = outcomes.filter((o) => o.key === s.key);
    expect(forKey.filter((o) => o.outcome.status === "applied").length).toBeLessThanOrEqual(1);
    const entryIds = new Set(forKey.flatMap((o) => (o.outcome.status === "applied" || o.outcome.status === "replay" ? [o.outcome.entry.id] : [])));
    expect(entryIds.size).toBeLessThanOrEqual(1);
  }
  // The mix must really have exercised every path.
  expect(outcomes.some((o) => o.outcome.status === "replay")).toBe(true);
  expect(applied.some((o) => o.kind === "deduct")).toBe(true);
  console.log(`concurrency: ${outcomes.length} requests, ${applied.length} applied, ${outcomes.filter((o) => o.outcome.status === "replay").length} replays, ${outcomes.filter((o) => o.outcome.status === "insufficient").length} refused (insufficient); final balance ${balance}`);
});
