import { sql } from "kysely";
import { afterAll, beforeAll, it } from "vitest";
import { makeRange, monthPeriod } from "../../app/domain/period";
import { rollForward } from "../../app/features/money/roll-forward.server";
import { billingOverview } from "../../app/features/money/billing.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => { t = await createTestDatabase(); });
afterAll(async () => t.drop());

it("times", async () => {
  const n = Number(process.env.PERF_ROWS ?? 1_000_000);
  let t0 = Date.now();
  await sql`INSERT INTO tokenboard.ledger_entries (user_id, kind, amount, balance_after, actor_label, idempotency_key, forced, created_at, amount_paid_cents, currency)
    SELECT ('00000000-0000-4000-8000-' || lpad((i % 10000)::text, 12, '0'))::uuid,
           (ARRAY['usage','usage','usage','usage','grant','purchase','expiry','deduct'])[1 + i % 8],
           CASE WHEN i % 8 IN (4,5) THEN 1000 ELSE -100 END, 0, 'perf', 'perf:' || i, true,
           timestamptz '2025-01-01' + (i::float8 / ${n}) * interval '365 days',
           CASE WHEN i % 8 = 5 THEN 100 END, CASE WHEN i % 8 = 5 THEN 'USD' END
    FROM generate_series(1, ${n}) i`.execute(t.db);
  await sql`VACUUM ANALYZE tokenboard.ledger_entries`.execute(t.db);
  console.log("insert", Date.now() - t0);
  const start = monthPeriod("2025-11", "America/New_York").start, end = monthPeriod("2025-11", "America/New_York").end;
  const a = await sql<{ "QUERY PLAN": string }>`EXPLAIN (ANALYZE, BUFFERS) SELECT user_id, kind, created_at >= ${start} AS inside, sum(amount), count(*) FROM ledger_entries WHERE created_at < ${end} GROUP BY 1,2,3`.execute(t.db);
  console.log(a.rows.map((r) => r["QUERY PLAN"]).join("\n"));
  const b = await sql<{ "QUERY PLAN": string }>`EXPLAIN (ANALYZE, BUFFERS) SELECT user_id, sum(amount) FILTER (WHERE created_at < ${start}), sum(amount) FILTER (WHERE created_at >= ${start} AND kind = 'grant'), sum(amount) FILTER (WHERE created_at >= ${start} AND kind = 'usage') FROM ledger_entries WHERE created_at < ${end} GROUP BY 1`.execute(t.db);
  console.log(b.rows.map((r) => r["QUERY PLAN"]).join("\n"));
  for (let k = 0; k < 2; k++) {
    t0 = Date.now();
    const rf = await rollForward(t.db, monthPeriod("2025-11", "America/New_York"));
    console.log("rollForward", Date.now() - t0, rf.owners);
    t0 = Date.now();
    await billingOverview(t.db, makeRange("2025-11-01", "2025-11-30", "Asia/Kolkata"));
    console.log("billing", Date.now() - t0);
  }
}, 600_000);
