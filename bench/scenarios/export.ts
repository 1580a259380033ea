/**
 * CSV exports, each in a child process (bench/scenarios/export-child.ts) so that peak RSS is
 * the export's own:
 *  - streaming raw export (COPY … TO STDOUT piped through): the first 1M rows of the data set
 *    and every row of it (10M on the full set), against < 5 s / < 60 s and peak RSS < 150 MB;
 *    the 1M export is measured after one untimed first run (shown too), as the naive one is;
 *  - the naive way beside it on the same 1M rows: every row in memory, then one CSV string;
 *  - the monthly per-user CSV of the data set's busiest month, against < 2 s.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { sql } from "kysely";
import { monthPeriod } from "../../app/domain/period";
import { cpuDelta, formatMs, formatRatio, postgresCpu, postgresCpuSettled } from "../measure";
import type { BenchContext, BenchResult, BenchScenario } from "../types";

const NAME = "export";
const RSS_LIMIT_MB = 150;
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "export-child.ts");
const run = promisify(execFile);

interface ChildResult {
  rows: number;
  bytes: number;
  ms: number;
  maxRssMb: number;
  /** CPU seconds of the export's own process. */
  cpuSeconds: number;
  /** CPU seconds PostgreSQL's processes used meanwhile (null without /proc). */
  postgresCpuSeconds: number | null;
}

/**
 * A small young generation: a streaming export allocates short-lived chunks only, and V8's default
 * semi-spaces (up to 16 MB each) would otherwise hold ~40 MB of garbage between scavenges.
 */
const CLI_NODE_FLAGS = ["--max-semi-space-size=2"];

async function child(ctx: BenchContext, mode: string, start: Date, end: Date): Promise<ChildResult> {
  const pgBefore = await postgresCpu(ctx.pool);
  // The same Node flags as `npm run cli` (package.json), which is how exports run outside the server.
  const { stdout } = await run(process.execPath, [...CLI_NODE_FLAGS, "--import", "tsx", CHILD, mode, start.toISOString(), end.toISOString()], {
    env: { ...process.env, DATABASE_URL: ctx.url },
    maxBuffer: 1 << 20,
  });
  const postgresCpuSeconds = cpuDelta(pgBefore, await postgresCpuSettled(ctx.pool, pgBefore));
  const result = { ...(JSON.parse(stdout.trim().split("\n").at(-1) as string) as Omit<ChildResult, "postgresCpuSeconds">), postgresCpuSeconds };
  ctx.log(`  ${mode}: ${result.rows.toLocaleString("en-US")} lines, ${(result.bytes / 1e6).toFixed(0)} MB in ${formatMs(result.ms)}, peak RSS ${result.maxRssMb.toFixed(0)} MB; ${describeCpu(result)}`);
  return result;
}

/**
 * CPU the export used: PostgreSQL (a COPY's rows are rendered by one backend, however many
 * workers read them) and the Node process reading the stream.
 */
function describeCpu(result: ChildResult): string {
  const postgres = result.postgresCpuSeconds === null ? "n/a" : `${result.postgresCpuSeconds.toFixed(1)} s`;
  return `CPU: PostgreSQL ${postgres}, Node ${result.cpuSeconds.toFixed(1)} s`;
}

/** The instant range holding the first `rows` rows of the data set (end exclusive). */
async function firstRows(ctx: BenchContext, rows: number): Promise<{ start: Date; end: Date; rows: number }> {
  const bounds = await sql<{ start: Date; end: Date; total: number }>`
    SELECT min(created_at) AS start, max(created_at) + interval '1 millisecond' AS end, count(*)::bigint AS total FROM token_usage`.execute(ctx.db);
  const all = bounds.rows[0] as { start: Date; end: Date; total: number };
  if (rows >= all.total) return { start: all.start, end: all.end, rows: all.total };
  const cut = await sql<{ at: Date }>`SELECT created_at AS at FROM token_usage ORDER BY created_at OFFSET ${rows} LIMIT 1`.execute(ctx.db);
  return { start: all.start, end: (cut.rows[0] as { at: Date }).at, rows };
}

function rawResults(label: string, result: ChildResult, limitMs: number): BenchResult[] {
  return [
    { scenario: NAME, metric: `raw CSV, ${label} (streaming COPY)`, measured: formatMs(result.ms), target: `< ${formatMs(limitMs)}`, pass: result.ms < limitMs },
    { scenario: NAME, metric: `raw CSV, ${label}: CPU used`, measured: describeCpu(result).replace("CPU: ", ""), target: "", pass: null },
    { scenario: NAME, metric: `raw CSV, ${label}: peak RSS`, measured: `${result.maxRssMb.toFixed(0)} MB`, target: `< ${RSS_LIMIT_MB} MB`, pass: result.maxRssMb < RSS_LIMIT_MB },
  ];
}

export const exportScenario: BenchScenario = {
  name: NAME,
  run: async (ctx) => {
    const results: BenchResult[] = [];
    const million = await firstRows(ctx, 1_000_000);
    const label1 = `${(million.rows / 1e6).toFixed(1)}M rows`;
    // The first read of these rows after the data set's server started is slower (empty shared
    // buffers; 0.8–3 s more here), which the naive run after it would be spared: it is shown,
    // and the measured streaming and naive runs both follow it.
    const cold1 = await child(ctx, "streaming-raw", million.start, million.end);
    const naive1 = await child(ctx, "naive-raw", million.start, million.end);
    const streaming1 = await child(ctx, "streaming-raw", million.start, million.end);
    results.push(...rawResults(label1, streaming1, 5_000));
    results.push(
      { scenario: NAME, metric: `raw CSV, ${label1}: first run after the server started (cache cold)`, measured: formatMs(cold1.ms), target: "", pass: null },
      { scenario: NAME, metric: `raw CSV, ${label1} (naive: all rows in memory)`, measured: `${formatMs(naive1.ms)}, peak RSS ${naive1.maxRssMb.toFixed(0)} MB`, target: "", pass: null },
      { scenario: NAME, metric: `raw CSV, ${label1}: streaming vs naive`, measured: `${formatRatio(naive1.ms / streaming1.ms)} faster, ${formatRatio(naive1.maxRssMb / streaming1.maxRssMb)} less memory`, target: "", pass: null },
    );
    if (ctx.rows > million.rows) {
      const all = await firstRows(ctx, ctx.rows);
      const streamingAll = await child(ctx, "streaming-raw", all.start, all.end);
      results.push(...rawResults(`${(all.rows / 1e6).toFixed(1)}M rows`, streamingAll, 60_000));
    }
    const busiest = await sql<{ month: string }>`
      SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month FROM token_usage GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`.execute(ctx.db);
    const month = busiest.rows[0]?.month;
    if (month) {
      const period = monthPeriod(month, "UTC");
      const monthly = await child(ctx, "streaming-monthly", period.start, period.end);
      results.push({ scenario: NAME, metric: `monthly CSV (per user × type) of ${month}`, measured: formatMs(monthly.ms), target: "< 2 s", pass: monthly.ms < 2_000 });
    }
    return results;
  },
};
