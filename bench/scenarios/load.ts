/**
 * Load: ingest at the highest rate two clients sustain for a bounded time (60 s by default,
 * BENCH_LOAD_SECONDS to change; loopback only) while the overview's loader queries are read in
 * a loop and the rollup job runs as in production (server/jobs.ts). Reports events/s, loader p95
 * during the load, and rows lost (accepted events missing from token_usage: must be 0).
 * Everything inserted is deleted at the end.
 */
import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { makeRange, todayIn, addDays } from "../../app/domain/period";
import { registerApiKey } from "../../app/lib/auth.server";
import { closeDb } from "../../app/lib/db.server";
import { runRollup } from "../../app/models/rollup.server";
import { overviewTotals, tokensPerDayByType } from "../../app/routes/overview/queries.server";
import { createTokenboardClient } from "../../client/track-token-usage";
import { formatMs, summarize } from "../measure";
import type { BenchScenario } from "../types";
import { benchEvent, serveIngestRoute } from "./ingest";
import { JOBS, startJobs } from "../../server/jobs";

const NAME = "load";
const PREFIX = "bench-load-";
const CLIENTS = 2;
const BATCH = 1000;
const TARGET_EVENTS_PER_SECOND = 20_000;
const MAX_SECONDS = 300;

export const loadScenario: BenchScenario = {
  name: NAME,
  run: async (ctx) => {
    const seconds = Math.min(MAX_SECONDS, Math.max(5, Number(process.env.BENCH_LOAD_SECONDS ?? 60)));
    const key = `bench-load-key-${randomUUID()}`;
    await registerApiKey(ctx.db, "bench load", "ingest", key);
    await closeDb();
    process.env.DATABASE_URL = ctx.url;
    const server = await serveIngestRoute();
    const deadline = performance.now() + seconds * 1000;
    let accepted = 0;
    let failedBatches = 0;
    let next = 0;
    const ingestClient = async () => {
      const client = createTokenboardClient({ baseUrl: server.url, ingestKey: key, retries: 3 });
      while (performance.now() < deadline) {
        const offset = (next += BATCH);
        const batch = Array.from({ length: BATCH }, (_, i) => benchEvent(offset + i, PREFIX));
        try {
          // Await first: `accepted += await …` would read `accepted` before the other client adds to it.
          const answer = await client.trackTokenUsage(batch);
          accepted += answer.accepted;
        } catch {
          failedBatches += 1;
        }
      }
    };
    const range = makeRange(addDays(todayIn("UTC"), -29), todayIn("UTC"), "UTC");
    const readLatencies: number[] = [];
    const reader = async () => {
      while (performance.now() < deadline) {
        const started = performance.now();
        await Promise.all([overviewTotals(ctx.db, range), tokensPerDayByType(ctx.db, range)]);
        readLatencies.push(performance.now() - started);
      }
    };
    // The production job runner and job, as `npm start` runs them.
    const jobs = startJobs(ctx.url, () => undefined, JOBS.filter((job) => job.name === "usage-rollup"));
    const started = performance.now();
    try {
      await Promise.all([...Array.from({ length: CLIENTS }, ingestClient), reader()]);
    } finally {
      await jobs.stop();
      await server.close();
      await closeDb();
    }
    const elapsed = performance.now() - started;
    const stored = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM token_usage WHERE event_id LIKE ${`${PREFIX}%`}`.execute(ctx.db);
    const lost = accepted - Number(stored.rows[0]?.n ?? 0);
    await sql`DELETE FROM token_usage WHERE event_id LIKE ${`${PREFIX}%`}`.execute(ctx.db);
    await ctx.db.deleteFrom("api_keys").where("name", "=", "bench load").execute();
    await runRollup(ctx.db);
    const rate = Math.round((accepted * 1000) / elapsed);
    const reads = summarize(readLatencies);
    ctx.log(`load: ${accepted.toLocaleString("en-US")} events in ${formatMs(elapsed)} (${rate.toLocaleString("en-US")}/s), ${failedBatches} failed batches, overview p95 ${formatMs(reads.p95)} over ${readLatencies.length} reads, ${lost} lost`);
    return [
      { scenario: NAME, metric: `ingest for ${seconds} s, ${CLIENTS} clients × 1000-event batches, while dashboards are read`, measured: `${rate.toLocaleString("en-US")} events/s`, target: `>= ${TARGET_EVENTS_PER_SECOND.toLocaleString("en-US")} events/s`, pass: rate >= TARGET_EVENTS_PER_SECOND },
      { scenario: NAME, metric: "overview loader queries during the load", measured: `${formatMs(reads.p95)} p95 (p50 ${formatMs(reads.p50)}, n=${readLatencies.length})`, target: "", pass: null },
      { scenario: NAME, metric: "accepted events missing from token_usage", measured: `${lost} (of ${accepted.toLocaleString("en-US")})`, target: "0", pass: lost === 0 },
    ];
  },
};
