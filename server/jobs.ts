/**
 * In-process background jobs: each runs on an interval, never overlapping itself, and stops
 * cleanly with the server. The same work is available as CLI commands.
 */
import { createDb } from "../db/database";
import type { Kysely } from "kysely";
import type { Database } from "../db/types";
import { expireDueGrants } from "../app/models/ledger.server";
import { rollupJob } from "../app/models/rollup.server";
import { detectOutliers, summarizeDetection } from "../app/models/outliers.server";
import { metrics } from "../app/lib/metrics.server";
import { alertJobs } from "../app/features/alerts/jobs.server";

/** What a run may report: a line for the log, and whether work is left (then it runs again at once). */
export interface JobOutcome {
  summary?: string;
  backlog: boolean;
}

export interface Job {
  name: string;
  intervalMs: number;
  run: (db: Kysely<Database>) => Promise<string | void | JobOutcome>;
}

export interface JobRunner {
  stop: () => Promise<void>;
}

export const JOBS: Job[] = [
  // Outlier flags, incremental from the last run's watermark (the daily rules re-read their 28-day baselines).
  { name: "detect-outliers", intervalMs: 300_000, run: async (db) => { const r = await detectOutliers(db); return r.inserted || r.skipped ? summarizeDetection(r) : undefined; } },
  // Keeps dashboard rollups current: consumes the queue the token_usage trigger fills. Every
  // half second: pages add the queue's tail to the rollups, ~1 µs per tail row and scan, so a
  // short queue keeps reads cheap under ingest (docs/ingest.md, "Under load"; 1M set, 30 s of
  // load: 18,349 and 18,610 events/s against 15,951–18,081 every second). An idle pass is four
  // small statements (the two rebuild checks, one empty apply of staged charges, one empty batch).
  { name: "usage-rollup", intervalMs: 500, run: (db) => rollupJob(db) },
  // Removes what is left of grants whose expiry passed (adjustments also do it for their user).
  { name: "ledger-expire-grants", intervalMs: 60_000, run: async (db) => { const { expired, failed } = await expireDueGrants(db); return expired || failed ? `expired grants of ${expired} users, ${failed} failed` : undefined; } },
  ...alertJobs,
];

export type JobLog = (line: string, level?: "info" | "error") => void;

export function startJobs(databaseUrl: string, log: JobLog, jobs: Job[] = JOBS): JobRunner {
  const { jobSeconds, jobFailures } = metrics();
  const { db } = createDb(databaseUrl, 2);
  // One pending timer per job: a run schedules the next one when it ends, so runs never overlap.
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Set<Promise<unknown>>();
  let stopped = false;
  for (const job of jobs) {
    const tick = async () => {
      if (stopped) return;
      const started = Date.now();
      let backlog = false;
      const work = job.run(db).then(
        (outcome) => {
          jobSeconds.observe({ job: job.name, outcome: "ok" }, (Date.now() - started) / 1000);
          const summary = typeof outcome === "object" ? outcome.summary : outcome;
          backlog = typeof outcome === "object" && outcome.backlog;
          if (summary) log(`job ${job.name}: ${summary} (${Date.now() - started} ms)`);
        },
        (error: unknown) => {
          jobSeconds.observe({ job: job.name, outcome: "failed" }, (Date.now() - started) / 1000);
          jobFailures.inc({ job: job.name });
          log(`job ${job.name} failed: ${error instanceof Error ? error.message : String(error)}`, "error");
        },
      );
      running.add(work);
      await work;
      running.delete(work);
      if (!stopped) timers.set(job.name, setTimeout(tick, backlog ? 0 : job.intervalMs));
    };
    timers.set(job.name, setTimeout(tick, 1_000));
  }
  return {
    stop: async () => {
      stopped = true;
      for (const t of timers.values()) clearTimeout(t);
      await Promise.all(running);
      await db.destroy();
    },
  };
}
