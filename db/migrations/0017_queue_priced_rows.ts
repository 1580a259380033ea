import { sql, type Kysely } from "kysely";

/**
 * Queue rows carry their cost, priced once when the trigger queues them.
 *
 * Every page read adds the queue's tail to the rollups, and priced each tail row again (a join
 * with ai_model_pricing and a numeric formula per row); the rollup job priced it once more.
 * Under heavy ingest the tail reaches the ingest backpressure bound (100,000 rows). Measured on
 * the 10M bench set with 100,000 rows queued, alternated: the overview's statement 379–401 ms of
 * PostgreSQL CPU pricing each row, 285–315 ms reading the queued cost.
 *
 * - tokenboard.usage_cost_cents: the cost formula, once, for the trigger and for every reader of
 *   raw rows (costCentsSql in app/models/cost.server.ts calls it). A one-expression SQL function,
 *   not STRICT, without SET: the planner inlines it, so it costs what the expression costs.
 * - usage_rollup_queue.cost_cents replaces calculated_cost_cents and audio_seconds, which
 *   served the pricing only; rows queued before are priced here, under the table's lock.
 * - The trigger prices with the prices of the moment a row is written; before, the job priced
 *   it when rolling it up, seconds later. A pricing change still reprices no history
 *   (`rollup --rebuild` does).
 */
const FORMULA = sql`COALESCE(
    calculated_cost_cents,
    CASE WHEN price_per_unit IS NOT NULL THEN price_per_unit * 100 * GREATEST(COALESCE(audio_seconds, 0), 1)
         ELSE (COALESCE(input_tokens, 0) * input_price_per_1m + COALESCE(output_tokens, 0) * output_price_per_1m) / 10000.0 END,
    0)`;

const COST = sql`tokenboard.usage_cost_cents(u.calculated_cost_cents, u.audio_seconds, u.input_tokens, u.output_tokens,
  p.price_per_unit, p.input_price_per_1m, p.output_price_per_1m)`;

/** The queued columns both versions share. */
const SHARED = sql.raw("created_at, user_id, action_type, route, model_used, success, tokens_used, input_tokens, output_tokens");
const SHARED_U = sql.raw("u.created_at, u.user_id, u.action_type, u.route, u.model_used, u.success, u.tokens_used, u.input_tokens, u.output_tokens");

function enqueueFunction(priced: boolean) {
  const columns = priced ? sql`sign, ${SHARED}, cost_cents` : sql`sign, ${SHARED}, calculated_cost_cents, audio_seconds`;
  const rows = (sign: number, table: string) =>
    priced
      ? sql`SELECT ${sql.lit(sign)}, ${SHARED_U}, ${COST} FROM ${sql.raw(table)} u LEFT JOIN public.ai_model_pricing p ON p.model_name = u.model_used`
      : sql`SELECT ${sql.lit(sign)}, ${SHARED_U}, u.calculated_cost_cents, u.audio_seconds FROM ${sql.raw(table)} u`;
  return sql`
    CREATE OR REPLACE FUNCTION tokenboard.enqueue_usage_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO tokenboard.usage_rollup_queue (${columns}) ${rows(-1, "old_rows")};
      END IF;
      IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO tokenboard.usage_rollup_queue (${columns}) ${rows(1, "new_rows")};
      END IF;
      RETURN NULL;
    END $$`;
}

/**
 * The app's writes to token_usage wait until the migration commits. Without this, an insert whose
 * trigger reached the queue while the migration held it ran the old trigger's INSERT against the
 * new columns afterwards and failed: the app would lose that usage row (tested).
 */
const holdAppWrites = sql`LOCK TABLE public.token_usage IN SHARE ROW EXCLUSIVE MODE`;

export async function up(db: Kysely<unknown>): Promise<void> {
  await holdAppWrites.execute(db);
  await sql`
    CREATE FUNCTION tokenboard.usage_cost_cents(calculated_cost_cents numeric, audio_seconds numeric, input_tokens integer, output_tokens integer,
      price_per_unit numeric, input_price_per_1m numeric, output_price_per_1m numeric) RETURNS numeric
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ${FORMULA} $$`.execute(db);
  await sql`ALTER TABLE tokenboard.usage_rollup_queue ADD COLUMN cost_cents numeric`.execute(db);
  await sql`
    UPDATE tokenboard.usage_rollup_queue q SET cost_cents = c.cost
    FROM (SELECT u.id, ${COST} AS cost FROM tokenboard.usage_rollup_queue u LEFT JOIN public.ai_model_pricing p ON p.model_name = u.model_used) c
    WHERE c.id = q.id`.execute(db);
  await sql`ALTER TABLE tokenboard.usage_rollup_queue ALTER COLUMN cost_cents SET NOT NULL, DROP COLUMN calculated_cost_cents, DROP COLUMN audio_seconds`.execute(db);
  await enqueueFunction(true).execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await holdAppWrites.execute(db);
  await sql`ALTER TABLE tokenboard.usage_rollup_queue ADD COLUMN calculated_cost_cents numeric(12,4), ADD COLUMN audio_seconds numeric(10,2)`.execute(db);
  // The old job prices calculated_cost_cents first: queued rows keep their cost (to 4 decimals).
  await sql`UPDATE tokenboard.usage_rollup_queue SET calculated_cost_cents = round(cost_cents, 4)`.execute(db);
  await sql`ALTER TABLE tokenboard.usage_rollup_queue DROP COLUMN cost_cents`.execute(db);
  await enqueueFunction(false).execute(db);
  await sql`DROP FUNCTION tokenboard.usage_cost_cents(numeric, numeric, integer, integer, numeric, numeric, numeric)`.execute(db);
}
