import { sql, type Kysely } from "kysely";

/**
 * No parallel scans of the rollup queue. Every page adds the queue's tail to the rollups with a
 * sequential scan of the queue, which the rollup job keeps short (it runs every second and
 * vacuums the queue, app/models/rollup.server.ts). Under ingest the queue's heap is still a few
 * megabytes, enough for the planner to start parallel workers: a process each, per query, per
 * page read. Measured during the bench's load scenario on 2 cores: those workers used ~0.4 of a
 * core (6.0 s of 15 s of PostgreSQL CPU), 1.8 s with this setting; the reads took no longer.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.usage_rollup_queue SET (parallel_workers = 0)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE tokenboard.usage_rollup_queue RESET (parallel_workers)`.execute(db);
}
