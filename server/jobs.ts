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

export interface Job {
  name: string;
  intervalMs: number;
  run: (db: Kysely<Database>) => Promise<string | void>;
}

export interface JobRunner {
  stop: () => Promise<void>;
}

export const JOBS: Job[] = [
  // Outlier flags, incremental from the last run's watermark (the daily rules re-read their 28-day baselines).
  { name: "detect-outliers", intervalMs: 300_000, run: async (db) => { const r = await detectOutliers(db); return r.inserted || r.skipped ? summarizeDetection(r) : undefined; } },
  // Keeps dashboard rollups current: consumes the queue the token_usage trigger fills.
  { name: "usage-rollup", intervalMs: 5_000, run: rollupJob },
  // Removes what is left of grants whose expiry passed (adjustments also do it for their user).
  { name: "ledger-expire-grants", intervalMs: 60_000, run: async (db) => { const users = await expireDueGrants(db); return users ? `expired grants of ${users} users` : undefined; } },
];

export function startJobs(databaseUrl: string, log: (line: string) => void, jobs: Job[] = JOBS): JobRunner {
  const { db } = createDb(databaseUrl, 2);
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<Promise<unknown>>();
  let stopped = false;
  for (const job of jobs) {
    const tick = async () => {
      if (stopped) return;
      const started = Date.now();
      const work = job.run(db).then(
        (summary) => {
          if (summary) log(`job ${job.name}: ${summary} (${Date.now() - started} ms)`);
        },
        (error: unknown) => log(`job ${job.name} failed: ${error instanceof Error ? error.message : String(error)}`),
      );
      running.add(work);
      await work;
      running.delete(work);
      if (!stopped) timers.push(setTimeout(tick, job.intervalMs));
    };
    timers.push(setTimeout(tick, 1_000));
  }
  return {
    stop: async () => {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      await Promise.all(running);
      await db.destroy();
    },
  };
}
