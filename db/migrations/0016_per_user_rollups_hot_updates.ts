import { sql, type Kysely } from "kysely";

/**
 * Let the rollup job update the per-user rollups in place (HOT updates). The job adds every
 * batch into user_usage_day, _day_total, _month and _month_total: under steady ingest nearly
 * one row per event in each, the same rows again and again (today's and this month's). An
 * update that changes no indexed column and finds room on its page is a heap-only tuple: no
 * new entry in any index. Two indexes carried measures the job changes (first_at/last_at,
 * calls…tokens), so every update wrote a new entry into every index of those tables, and the
 * tables were packed full, so even the others had no room on the page.
 *
 * - user_usage_day_user_type_idx without INCLUDE (first_at, last_at): its readers (a report's
 *   first/last call when the month's lies outside the range) read one row per lookup.
 * - user_usage_day_total_cover_idx dropped: the per-user readers read month rows and a few
 *   day rows now (0012), through the primary key.
 * - fillfactor 70 on the four tables: pages written from now on keep 30% free for new
 *   versions. Rows of past days and months are not updated again; their pages stay as full
 *   as they were written.
 *
 * Measured on the 10M-row bench set (copies of the four tables, 50,000 keys of 10,000 users
 * upserted per round, as the load scenario's batches do, rounds alternated): 3.0–3.3 s per
 * round before, 1.1–1.6 s after; 82% of the updates were HOT (0% for the day tables before).
 * The price is on reads of day rows at a range's edges, now from the heap: top 25 users at 10M
 * rows went from 20.5 / 40.3 ms p95 (UTC / Asia/Kolkata) to 38.7 / 72.8 ms. docs/rollups.md.
 */
const TABLES = ["user_usage_day", "user_usage_day_total", "user_usage_month", "user_usage_month_total"];

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS tokenboard.user_usage_day_total_cover_idx`.execute(db);
  await sql`DROP INDEX IF EXISTS tokenboard.user_usage_day_user_type_idx`.execute(db);
  await sql`CREATE INDEX user_usage_day_user_type_idx ON tokenboard.user_usage_day (user_id, action_type, day)`.execute(db);
  for (const table of TABLES) await sql`ALTER TABLE ${sql.table(`tokenboard.${table}`)} SET (fillfactor = 70)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of TABLES) await sql`ALTER TABLE ${sql.table(`tokenboard.${table}`)} RESET (fillfactor)`.execute(db);
  await sql`DROP INDEX IF EXISTS tokenboard.user_usage_day_user_type_idx`.execute(db);
  await sql`CREATE INDEX user_usage_day_user_type_idx ON tokenboard.user_usage_day (user_id, action_type, day) INCLUDE (first_at, last_at)`.execute(db);
  await sql`
    CREATE INDEX IF NOT EXISTS user_usage_day_total_cover_idx
    ON tokenboard.user_usage_day_total (day, user_id) INCLUDE (calls, failures, tokens, cost_cents)`.execute(db);
}
