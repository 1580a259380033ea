import { sql, type Kysely } from "kysely";

/**
 * Failed calls by action type and time, with their tokens. The override impact preview charges
 * the successful calls of the last 30 days: their count and tokens come from the rollups
 * (calls − failures, tokens) less the tokens of the failed calls, which the rollups do not keep
 * apart. Failed calls are a few percent of the rows, so this partial index is small and costs
 * ingest little; it turns the preview's read of a month of one type's rows (1.3–1.6 s for
 * chat_conversation at 10M) into one of its failed rows.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE INDEX IF NOT EXISTS token_usage_failed_type_created_idx
    ON public.token_usage (action_type, created_at) INCLUDE (tokens_used) WHERE NOT success`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS public.token_usage_failed_type_created_idx`.execute(db);
}
