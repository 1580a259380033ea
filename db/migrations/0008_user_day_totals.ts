import { sql, type Kysely } from "kysely";

/**
 * Per user and UTC day, all action types together. user_usage_day (0005) keeps the action
 * type for reports; user rankings need no type, and this table is several times smaller,
 * which is what keeps "top users over 30 days" fast on large data sets.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE TABLE tokenboard.user_usage_day_total (
      day date NOT NULL, user_id uuid NOT NULL,
      calls bigint NOT NULL DEFAULT 0, failures bigint NOT NULL DEFAULT 0, tokens bigint NOT NULL DEFAULT 0,
      cost_cents numeric NOT NULL DEFAULT 0,
      PRIMARY KEY (day, user_id)
    )`.execute(db);
  // Per-type user rankings (one action type's page) read user_usage_day by type and day.
  await sql`CREATE INDEX user_usage_day_type_idx ON tokenboard.user_usage_day (action_type, day)`.execute(db);
  // Filled from user_usage_day, which already holds every rolled-up row.
  await sql`
    INSERT INTO tokenboard.user_usage_day_total (day, user_id, calls, failures, tokens, cost_cents)
    SELECT day, user_id, sum(calls), sum(failures), sum(tokens), sum(cost_cents) FROM tokenboard.user_usage_day GROUP BY day, user_id`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`DROP INDEX IF EXISTS tokenboard.user_usage_day_type_idx`.execute(db);
  await sql`DROP TABLE IF EXISTS tokenboard.user_usage_day_total`.execute(db);
}
