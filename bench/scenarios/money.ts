/**
 * The money views on the data set, inside one transaction that is rolled back: first the
 * ledger per-day charging would write (one usage entry per user and UTC day with usage, from
 * the per-user day rollups, and one priced purchase per user), then
 *  - the Billing page's figures for the last 30 days (app/features/money/billing.server.ts);
 *  - the monthly roll-forward CSV (`export-balances`) for the last whole month, from the
 *    ledger's month totals, beside the naive way: one GROUP BY over every entry before the
 *    month's end. Both must give the same TOTAL.
 */
import { sql } from "kysely";
import { addDays, currentMonth, makeRange, monthPeriod, previousMonth, todayIn } from "../../app/domain/period";
import { billingOverview } from "../../app/features/money/billing.server";
import { rollForward, rollForwardCsv } from "../../app/features/money/roll-forward.server";
import { datasetNow } from "../dataset";
import { measure, speedupResult, timingResult } from "../measure";
import type { BenchContext, BenchResult, BenchScenario } from "../types";

const NAME = "money";
const TZ = "America/New_York";

/** Rolls the transaction back after `fn`, keeping the data set as it was for the other scenarios. */
class Rollback extends Error {}

export const moneyScenario: BenchScenario = {
  name: NAME,
  run: async (ctx: BenchContext): Promise<BenchResult[]> => {
    const now = await datasetNow(ctx.db);
    const to = todayIn(TZ, now);
    const range = makeRange(addDays(to, -29), to, TZ);
    const period = monthPeriod(previousMonth(currentMonth(TZ, now)), TZ, now);
    const results: BenchResult[] = [];
    await ctx.db.transaction().execute(async (trx) => {
      const started = performance.now();
      const written = await sql<{ n: number }>`
        WITH purchases AS (
          INSERT INTO tokenboard.ledger_entries (user_id, kind, amount, balance_after, actor_label, idempotency_key, forced, created_at, amount_paid_cents, currency)
          SELECT user_id, 'purchase', 1000000, 0, 'bench', 'bench-purchase-' || user_id, true, min(day)::timestamp AT TIME ZONE 'UTC', 1999, 'USD'
          FROM tokenboard.user_usage_day_total GROUP BY user_id
          RETURNING 1
        ), charges AS (
          INSERT INTO tokenboard.ledger_entries (user_id, kind, amount, balance_after, actor_label, forced, created_at)
          SELECT user_id, 'usage', -tokens, 0, 'bench', true, (day::timestamp AT TIME ZONE 'UTC') + interval '23 hours'
          FROM tokenboard.user_usage_day_total WHERE tokens > 0
          RETURNING 1
        )
        SELECT (SELECT count(*) FROM purchases) + (SELECT count(*) FROM charges) AS n`.execute(trx);
      await sql`ANALYZE tokenboard.ledger_entries`.execute(trx);
      await sql`ANALYZE tokenboard.ledger_month_totals`.execute(trx);
      ctx.log(`${NAME}: ${Number(written.rows[0]?.n).toLocaleString("en-US")} ledger entries written in ${Math.round(performance.now() - started)} ms (rolled back afterwards)`);

      const page = await measure(() => billingOverview(trx, range), { repetitions: 5 });
      const exportCsv = await measure(async () => rollForwardCsv(await rollForward(trx, period)), { repetitions: 5 });
      const naive = async () =>
        sql<{ closing: number }>`
          SELECT sum(closing)::bigint AS closing FROM (
            SELECT user_id, sum(amount) FILTER (WHERE created_at < ${period.start}) AS opening,
                   sum(amount) FILTER (WHERE created_at >= ${period.start} AND kind = 'usage') AS usage,
                   sum(amount) AS closing
            FROM tokenboard.ledger_entries WHERE created_at < ${period.end} GROUP BY user_id) o`.execute(trx);
      const naiveTiming = await measure(naive, { repetitions: 3 });
      const [fast, slow] = await Promise.all([rollForward(trx, period), naive()]);
      if (fast.total.closing_balance !== Number(slow.rows[0]?.closing ?? 0)) {
        throw new Error(`roll-forward TOTAL ${fast.total.closing_balance} differs from the naive sum ${slow.rows[0]?.closing}`);
      }
      results.push(
        timingResult(NAME, "Billing page figures, 30 days", page, 2_000),
        timingResult(NAME, `export-balances ${period.month} (${fast.owners.toLocaleString("en-US")} owners)`, exportCsv, 2_000),
        timingResult(NAME, "roll-forward, naive (every entry before the month's end)", naiveTiming, null),
        speedupResult(NAME, "roll-forward: month totals vs naive", exportCsv, naiveTiming, null),
      );
      throw new Rollback();
    }).catch((error: unknown) => {
      if (!(error instanceof Rollback)) throw error;
    });
    return results;
  },
};
