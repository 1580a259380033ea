/**
 * Storing usage events in token_usage. API batches and CSV imports end in the same
 * INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING, so both are idempotent by event_id and
 * racing writers of the same events store each event once (the unique index serialises them).
 * Nothing here depends on triggers other features put on token_usage.
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import type { Database } from "../../db/types";
import type { UsageEvent, UsageEventField } from "../domain/usage-event";

/** The SQL type of every field an event may carry (the jsonb recordset and the COPY staging table use them). */
export const USAGE_COLUMN_TYPES = {
  user_id: "uuid",
  action_type: "text",
  model_used: "text",
  tokens_used: "integer",
  input_tokens: "integer",
  output_tokens: "integer",
  success: "boolean",
  error_message: "text",
  metadata: "jsonb",
  created_at: "timestamptz",
  calculated_cost_cents: "numeric",
  audio_seconds: "numeric",
  audio_duration_formatted: "text",
  openai_request_id: "text",
  openai_created: "bigint",
  system_fingerprint: "text",
  actual_cost_cents: "numeric",
  reconciled_at: "timestamptz",
  reconciliation_status: "text",
  route: "text",
  event_id: "text",
} as const satisfies Record<UsageEventField, string>;

export const USAGE_COLUMNS = Object.keys(USAGE_COLUMN_TYPES) as UsageEventField[];

/** `name type, …` for a recordset or a CREATE TABLE. */
export const usageColumnDefinitions = USAGE_COLUMNS.map((column) => `${column} ${USAGE_COLUMN_TYPES[column]}`).join(", ");

export interface IngestCounts {
  accepted: number;
  duplicates: number;
}

/**
 * INSERT … SELECT from `source` (a relation with the usage columns, aliased `src`) into
 * token_usage, skipping event_ids already stored; answers how many rows were inserted.
 * One statement: it succeeds or fails whole.
 */
export function insertUsageFrom(source: RawBuilder<unknown>): RawBuilder<{ accepted: number }> {
  const targets = sql.raw(USAGE_COLUMNS.join(", "));
  // created_at left out means "now", as the table's default would have it.
  const values = sql.raw(USAGE_COLUMNS.map((c) => (c === "created_at" ? "coalesce(src.created_at, now())" : `src.${c}`)).join(", "));
  return sql<{ accepted: number }>`
    WITH inserted AS (
      INSERT INTO token_usage (${targets})
      SELECT ${values} FROM ${source}
      ON CONFLICT (event_id) DO NOTHING
      RETURNING 1
    )
    SELECT count(*)::int AS accepted FROM inserted`;
}

/** Events whose event_id already came earlier in the same batch are duplicates, not rows. */
function firstOfEachEventId(events: UsageEvent[]): UsageEvent[] {
  const seen = new Set<string>();
  return events.filter((event) => {
    if (event.event_id == null) return true;
    if (seen.has(event.event_id)) return false;
    seen.add(event.event_id);
    return true;
  });
}

/** Stores a validated batch in one round trip; repeats of stored or earlier event_ids are counted as duplicates. */
export async function insertUsageEvents(db: Kysely<Database> | Transaction<Database>, events: UsageEvent[]): Promise<IngestCounts> {
  const unique = firstOfEachEventId(events);
  const source = sql`jsonb_to_recordset(${JSON.stringify(unique)}::jsonb) AS src(${sql.raw(usageColumnDefinitions)})`;
  const { rows } = await insertUsageFrom(source).execute(db);
  const accepted = rows[0]?.accepted ?? 0;
  return { accepted, duplicates: events.length - accepted };
}

/**
 * The reference app's real bug: the database's action-type CHECK constraint lagging the
 * registry, so valid events are refused by PostgreSQL. Answers what an operator must do, or
 * null for other errors (whose text must not reach a user).
 */
export function constraintDriftMessage(error: unknown): string | null {
  const { code, constraint } = (error ?? {}) as { code?: unknown; constraint?: unknown };
  if (code !== "23514" || constraint !== "token_usage_action_type_check") return null;
  return "the database's token_usage_action_type_check constraint refuses an action type the registry allows; nothing was stored. An operator must run `npm run cli -- migrate` (see `npm run cli -- check-action-types`)";
}
