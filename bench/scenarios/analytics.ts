/**
 * The usage analytics pages on rollups, side by side with raw GROUP BY on the same data:
 *  - action types (calls, tokens, cost, out-of-range counts, p50/p95/max) for the last 30 days;
 *  - user search by email prefix and top-N users by tokens;
 *  - the first page of the raw drill-down;
 *  - rollup catch-up after 100,000 new rows, and what the queue trigger costs ingest.
 * Figures come from the same query functions the loaders call.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "../../db/types";
import { addDays, makeRange, todayIn, type DateRange } from "../../app/domain/period";
import { runRollup } from "../../app/models/rollup.server";
import { currentOverrides, typeHistograms, typeStats } from "../../app/routes/action-types/queries.server";
import { actionTypeRows } from "../../app/routes/action-types/aggregate";
import { topUsers } from "../../app/routes/action-type/queries.server";
import { searchUsers } from "../../app/routes/users/queries.server";
import { usageRows } from "../../app/routes/usage/queries.server";
import { datasetNow } from "../dataset";
import { describeTiming, formatMs, measure, speedupResult, timingResult, type Timing } from "../measure";
import type { BenchContext, BenchResult, BenchScenario } from "../types";

const NAME = "analytics";
const NEW_ROWS = 100_000;
const INGEST_BATCH = 1_000;
const BENCH_EVENT = "bench-analytics-";

async function actionTypesApp(db: Kysely<Database>, range: DateRange) {
  const [stats, bins, overrides] = await Promise.all([typeStats(db, range), typeHistograms(db, range), currentOverrides(db)]);
  return actionTypeRows(stats, bins, overrides);
}

/** The same page straight from token_usage: exact percentiles, one scan of the range. */
async function actionTypesRaw(db: Kysely<Database>, range: DateRange) {
  return sql`
    SELECT action_type, count(*) AS calls, sum(tokens_used) AS tokens, max(tokens_used) AS max,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY tokens_used) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY tokens_used) AS p95,
           count(*) FILTER (WHERE NOT success) AS failures
    FROM token_usage WHERE created_at >= ${range.start} AND created_at < ${range.end}
    GROUP BY action_type`.execute(db);
}

async function topUsersRaw(db: Kysely<Database>, range: DateRange) {
  return sql`
    SELECT user_id, sum(tokens_used) AS tokens FROM token_usage
    WHERE created_at >= ${range.start} AND created_at < ${range.end}
    GROUP BY user_id ORDER BY tokens DESC LIMIT 25`.execute(db);
}

/** Inserts `count` rows in multi-row statements of INSERT_BATCH, as the ingest API does. */
async function ingest(db: Kysely<Database>, count: number, tag: string, now: Date): Promise<void> {
  for (let done = 0; done < count; done += INGEST_BATCH) {
    await sql`
      INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, input_tokens, output_tokens, route, event_id, created_at)
      SELECT ('00000000-0000-4000-8000-' || lpad((n % 5000)::text, 12, '0'))::uuid,
             (ARRAY['chat_conversation', 'assessment_scoring', 'vision_generation', 'prompt_suggestions'])[1 + n % 4],
             'gpt-4o-mini', 100 + (n * 7919) % 5000, 60 + n % 3000, 40 + n % 2000, '/api/viva/chat',
             ${tag} || n, ${now}::timestamptz - (n % 2880) * interval '1 minute'
      FROM generate_series(${done}::int, ${done + INGEST_BATCH - 1}::int) AS n`.execute(db);
  }
}

/** Ingest time with the queue trigger, and with user triggers off (rolled back both times). */
async function ingestOverhead(db: Kysely<Database>, now: Date): Promise<{ withTrigger: number; without: number }> {
  const timeIt = async (disable: boolean) => {
    let ms = 0;
    await db.transaction().execute(async (trx) => {
      if (disable) await sql`ALTER TABLE public.token_usage DISABLE TRIGGER USER`.execute(trx);
      const started = performance.now();
      await ingest(trx, NEW_ROWS, `${BENCH_EVENT}overhead-`, now);
      ms = performance.now() - started;
      throw new RollbackSignal();
    }).catch((e: unknown) => {
      if (!(e instanceof RollbackSignal)) throw e;
    });
    return ms;
  };
  return { without: await timeIt(true), withTrigger: await timeIt(false) };
}

class RollbackSignal extends Error {}

async function catchUp(ctx: BenchContext, now: Date): Promise<{ ms: number; rows: number }> {
  await runRollup(ctx.db);
  await ingest(ctx.db, NEW_ROWS, `${BENCH_EVENT}catchup-`, now);
  const run = await runRollup(ctx.db);
  // Leave the data set as it was for the next run and scenario.
  await sql`DELETE FROM token_usage WHERE event_id LIKE ${`${BENCH_EVENT}%`}`.execute(ctx.db);
  await runRollup(ctx.db);
  return { ms: run.ms, rows: run.rows };
}

const FAST = { repetitions: 30, warmup: 3 };
const SLOW = { repetitions: 3, warmup: 1 };

export const analyticsScenario: BenchScenario = {
  name: NAME,
  run: async (ctx: BenchContext): Promise<BenchResult[]> => {
    const now = await datasetNow(ctx.db);
    const to = todayIn("UTC", now);
    const range = makeRange(addDays(to, -29), to, "UTC");
    const kolkata = makeRange(addDays(to, -29), to, "Asia/Kolkata");
    await runRollup(ctx.db);

    const app = await measure(() => actionTypesApp(ctx.db, range), FAST);
    const appKolkata = await measure(() => actionTypesApp(ctx.db, kolkata), FAST);
    const raw = await measure(() => actionTypesRaw(ctx.db, range), SLOW);
    ctx.log(`${NAME}: action types app ${describeTiming(app)}, Asia/Kolkata ${describeTiming(appKolkata)}, raw GROUP BY ${describeTiming(raw)}`);

    const prefix = await ctx.db.selectFrom("app_users").select("email").where("email", "is not", null).orderBy("user_id").limit(1).executeTakeFirst();
    const search = await measure(() => searchUsers(ctx.db, (prefix?.email ?? "a").slice(0, 5)), FAST);
    const top = await measure(() => topUsers(ctx.db, range, { limit: 25 }), FAST);
    const topKolkata = await measure(() => topUsers(ctx.db, kolkata, { limit: 25 }), { repetitions: 10, warmup: 1 });
    const topRaw = await measure(() => topUsersRaw(ctx.db, range), SLOW);
    ctx.log(`${NAME}: user search ${describeTiming(search)}, top users ${describeTiming(top)} (Kolkata ${describeTiming(topKolkata)}), raw ${describeTiming(topRaw)}`);

    const drill = await measure(() => usageRows(ctx.db, range, {}), FAST);
    const drillType = await measure(() => usageRows(ctx.db, range, { type: "image_generation" }), FAST);
    ctx.log(`${NAME}: first drill-down page ${describeTiming(drill)}, filtered by type ${describeTiming(drillType)}`);

    const overhead = await ingestOverhead(ctx.db, now);
    const caught = await catchUp(ctx, now);
    ctx.log(`${NAME}: ingest of ${NEW_ROWS} rows in ${INGEST_BATCH}-row statements ${formatMs(overhead.withTrigger)} with the queue trigger, ${formatMs(overhead.without)} without; catch-up ${caught.rows} rows in ${formatMs(caught.ms)}`);

    const single = (ms: number): Timing => ({ samples: [ms], p50: ms, p95: ms, min: ms, max: ms });
    return [
      timingResult(NAME, "action types loader queries (UTC, 30 days)", app, 100),
      timingResult(NAME, "action types loader queries (Asia/Kolkata)", appKolkata, 100),
      timingResult(NAME, "action types raw GROUP BY + percentile_cont", raw, null),
      speedupResult(NAME, "action types app vs raw GROUP BY (p95)", app, raw, 20),
      timingResult(NAME, "user search by email prefix", search, 150),
      timingResult(NAME, "top 25 users by tokens (UTC)", top, 150),
      timingResult(NAME, "top 25 users by tokens (Asia/Kolkata, raw edges)", topKolkata, 150),
      speedupResult(NAME, "top users app vs raw GROUP BY (p95)", top, topRaw, null),
      timingResult(NAME, "first drill-down page", drill, 100),
      timingResult(NAME, "first drill-down page, one type", drillType, 100),
      timingResult(NAME, `rollup catch-up after ${NEW_ROWS.toLocaleString("en-US")} new rows`, single(caught.ms), 5_000),
      {
        scenario: NAME,
        metric: `queue trigger cost on ingest (${NEW_ROWS.toLocaleString("en-US")} rows, ${INGEST_BATCH}-row statements)`,
        measured: `${formatMs(overhead.withTrigger)} vs ${formatMs(overhead.without)} (+${Math.round((overhead.withTrigger / overhead.without - 1) * 100)}%)`,
        target: "",
        pass: null,
      },
    ];
  },
};
