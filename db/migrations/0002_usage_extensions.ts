import { sql, type Kysely } from "kysely";

/**
 * What tokenboard adds to the seed app's token_usage. Adding a nullable column without a
 * default is a catalog-only change in PostgreSQL: no row is rewritten.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS route text`.execute(db);
  await sql`ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS event_id text`.execute(db);
  // Idempotent ingest: a repeated event_id is a duplicate. NULLs never collide.
  await sql`CREATE UNIQUE INDEX IF NOT EXISTS token_usage_event_id_key ON public.token_usage (event_id)`.execute(db);
  // Support view and per-user drill-down: one user's rows, newest first, keyset-paginated.
  await sql`CREATE INDEX IF NOT EXISTS token_usage_user_created_idx ON public.token_usage (user_id, created_at DESC, id DESC)`.execute(db);
  // Drill-down by action type within a time range, keyset-paginated on (created_at, id).
  await sql`CREATE INDEX IF NOT EXISTS token_usage_type_created_idx ON public.token_usage (action_type, created_at DESC, id DESC)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS public.token_usage_type_created_idx`.execute(db);
  await sql`DROP INDEX IF EXISTS public.token_usage_user_created_idx`.execute(db);
  await sql`DROP INDEX IF EXISTS public.token_usage_event_id_key`.execute(db);
  // route and event_id stay: dropping them would lose data the app ingested.
}
