/**
 * The overview page over the last 30 days, three ways side by side on the same data set:
 *  - app: the loader's queries as the app runs them (app/routes/overview/queries.server.ts);
 *  - raw GROUP BY: the same figures aggregated by SQL straight from token_usage;
 *  - naive: what the original app did: fetch every row of the range, add it up in JavaScript
 *    (paged, as its Supabase client did, so that it finishes at all on 10M rows).
 * All three must report the same tokens and calls; the ratios are the point.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "../../db/types";
import { costCents, type ModelPrice } from "../../db/seed/profile";
import { costCentsSql } from "../../app/models/cost.server";
import { addDays, makeRange, todayIn, type DateRange } from "../../app/domain/period";
import { outlierCounts, overviewUsage } from "../../app/routes/overview/queries.server";
import { datasetNow } from "../dataset";
import { describeTiming, formatMs, formatRatio, measure, speedupResult, timingResult } from "../measure";
import type { BenchContext, BenchResult, BenchScenario } from "../types";

const NAME = "overview";
const RANGE_DAYS = 30;
const NAIVE_PAGE = 50_000;

interface Figures {
  tokens: number;
  calls: number;
}

async function appLoaderQueries(db: Kysely<Database>, range: DateRange): Promise<Figures> {
  const [{ totals }] = await Promise.all([overviewUsage(db, range), outlierCounts(db, range)]);
  return { tokens: totals.tokens, calls: totals.calls };
}

async function rawGroupBy(db: Kysely<Database>, range: DateRange): Promise<Figures> {
  const totals = sql<Figures & { failures: number; cost: number; users: number }>`
    SELECT COALESCE(sum(u.tokens_used), 0)::bigint AS tokens, count(*)::bigint AS calls,
           count(*) FILTER (WHERE NOT u.success)::bigint AS failures,
           COALESCE(sum(${costCentsSql}), 0)::float8 AS cost,
           count(DISTINCT u.user_id)::bigint AS users
    FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end}`.execute(db);
  const perDay = sql`
    SELECT (u.created_at AT TIME ZONE ${range.tz})::date AS day, u.action_type, sum(u.tokens_used)::bigint AS tokens, count(*)::bigint AS calls
    FROM token_usage u WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end}
    GROUP BY 1, 2`.execute(db);
  const [result] = await Promise.all([totals, perDay]);
  const row = result.rows[0] as Figures;
  return { tokens: row.tokens, calls: row.calls };
}

interface NaiveRow {
  id: string;
  user_id: string;
  action_type: string;
  model_used: string;
  tokens_used: number;
  input_tokens: number | null;
  output_tokens: number | null;
  success: boolean;
  calculated_cost_cents: number | null;
  audio_seconds: number | null;
  created_at: Date;
}

type Keyset = Pick<NaiveRow, "created_at" | "id">;

/** One page of rows in (created_at, id) order after `after`. */
function naivePage(db: Kysely<Database>, range: DateRange, after: Keyset | null): Promise<NaiveRow[]> {
  let query = db
    .selectFrom("token_usage")
    .select(["id", "user_id", "action_type", "model_used", "tokens_used", "input_tokens", "output_tokens", "success", "calculated_cost_cents", "audio_seconds", "created_at"])
    .where("created_at", ">=", range.start)
    .where("created_at", "<", range.end);
  if (after) query = query.where((eb) => eb(eb.refTuple("created_at", "id"), ">", eb.tuple(after.created_at, after.id)));
  return query.orderBy("created_at").orderBy("id").limit(NAIVE_PAGE).execute();
}

async function naiveFetchAndReduce(db: Kysely<Database>, range: DateRange): Promise<Figures> {
  const prices = new Map<string, ModelPrice>();
  for (const p of await db.selectFrom("ai_model_pricing").selectAll().execute()) {
    prices.set(p.model_name, { ...p, model_family: p.model_family ?? "", price_per_unit: p.price_per_unit === null ? null : Number(p.price_per_unit) });
  }
  const totals = { tokens: 0, calls: 0, failures: 0, cost: 0 };
  const users = new Set<string>();
  const perDay = new Map<string, { tokens: number; calls: number }>();
  let after: Keyset | null = null;
  for (;;) {
    const page = await naivePage(db, range, after);
    for (const row of page) {
      totals.tokens += row.tokens_used;
      totals.calls += 1;
      if (!row.success) totals.failures += 1;
      totals.cost += row.calculated_cost_cents ?? costCents(prices.get(row.model_used), { input: row.input_tokens ?? 0, output: row.output_tokens ?? 0, audioSeconds: row.audio_seconds });
      users.add(row.user_id);
      const key = `${row.created_at.toISOString().slice(0, 10)}|${row.action_type}`;
      const bucket = perDay.get(key) ?? { tokens: 0, calls: 0 };
      bucket.tokens += row.tokens_used;
      bucket.calls += 1;
      perDay.set(key, bucket);
    }
    const last = page[page.length - 1];
    if (page.length < NAIVE_PAGE || !last) break;
    after = { created_at: last.created_at, id: last.id };
  }
  return { tokens: totals.tokens, calls: totals.calls };
}

/** Repetitions shrink with the work: the naive way takes tens of seconds on 10M rows. */
const REPETITIONS = { app: { repetitions: 30, warmup: 3 }, raw: { repetitions: 5, warmup: 1 }, naive: { repetitions: 3, warmup: 0 } };

export const overviewScenario: BenchScenario = {
  name: NAME,
  run: async (ctx: BenchContext): Promise<BenchResult[]> => {
    const to = todayIn("UTC", await datasetNow(ctx.db));
    const range = makeRange(addDays(to, -(RANGE_DAYS - 1)), to, "UTC");
    ctx.log(`${NAME}: last ${RANGE_DAYS} days (${range.from} … ${range.to}, UTC)`);

    const figures = { app: await appLoaderQueries(ctx.db, range), raw: await rawGroupBy(ctx.db, range), naive: await naiveFetchAndReduce(ctx.db, range) };
    const app = await measure(() => appLoaderQueries(ctx.db, range), REPETITIONS.app);
    ctx.log(`${NAME}: app loader queries ${describeTiming(app)}`);
    // Which of the loader's queries costs what, to know where to look when the target is missed.
    for (const [label, query] of [["overviewUsage", overviewUsage], ["outlierCounts", outlierCounts]] as const) {
      ctx.log(`${NAME}:   ${label} alone ${describeTiming(await measure(() => query(ctx.db, range), { repetitions: 10, warmup: 1 }))}`);
    }
    const raw = await measure(() => rawGroupBy(ctx.db, range), REPETITIONS.raw);
    ctx.log(`${NAME}: raw GROUP BY ${describeTiming(raw)}`);
    const naive = await measure(() => naiveFetchAndReduce(ctx.db, range), REPETITIONS.naive);
    ctx.log(`${NAME}: naive fetch + JS reduce ${describeTiming(naive)}`);
    ctx.log(`${NAME}: app ${formatMs(app.p95)} p95, raw GROUP BY ${formatMs(raw.p95)}, naive fetch+reduce ${formatMs(naive.p95)} → ${formatRatio(raw.p95 / app.p95)} / ${formatRatio(naive.p95 / app.p95)}`);

    const agree = figures.app.tokens === figures.raw.tokens && figures.raw.tokens === figures.naive.tokens
      && figures.app.calls === figures.raw.calls && figures.raw.calls === figures.naive.calls;
    return [
      timingResult(NAME, "overview loader queries (app)", app, 100),
      timingResult(NAME, "raw GROUP BY over token_usage", raw, null),
      timingResult(NAME, "naive fetch all rows + JS reduce", naive, null),
      speedupResult(NAME, "app vs raw GROUP BY (p95)", app, raw, 20),
      speedupResult(NAME, "app vs naive fetch + reduce (p95)", app, naive, null),
      {
        scenario: NAME,
        metric: "same tokens and calls all three ways",
        measured: agree ? `${figures.app.tokens.toLocaleString("en-US")} tokens, ${figures.app.calls.toLocaleString("en-US")} calls` : `differ: ${JSON.stringify(figures)}`,
        target: "equal",
        pass: agree,
      },
    ];
  },
};
