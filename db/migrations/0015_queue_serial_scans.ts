import { sql, type Kysely } from "kysely";

/**
 * No parallel scans of the rollup queue. Every page adds the queue's tail to the rollups with a
 * sequential scan of the queue, which the rollup job keeps short (it runs often and vacuums
 * the queue: server/jobs.ts, app/models/rollup.server.ts). Under ingest the queue's heap is still a few
 * megabytes, enough for the planner to start parallel workers: a process each, per query, per
 * page read. Measured during the bench's load scenario on 2 cores: processes that started and
 * ended within a 15 s window, mostly those workers, used 6.0 s of PostgreSQL's 21.1 s (0.5 s with
 * parallel query off for the whole database). One reader alone, 50,000 queued rows: 104 ms of
 * CPU per overview load without workers against 176 ms with them, 105 against 141 ms of wall time.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.usage_rollup_queue SET (parallel_workers = 0)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.usage_rollup_queue RESET (parallel_workers)`.execute(db);
}
