/**
 * Storing usage events in token_usage. API batches and CSV imports end in the same
 * INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING, so both are idempotent by event_id and
 * racing writers of the same events store each event once (the unique index serialises them).
 * Nothing here depends on triggers other features put on token_usage.
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import { v7 as uuidv7 } from "uuid";
import type { Database } from "../../db/types";
import type { UsageEvent, UsageEventField } from "../domain/usage-event";

/** The SQL type of every field an event may carry (the API's column arrays and the COPY staging table use them). */
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

/**
 * The id of a row tokenboard stores: a UUIDv7 (RFC 9562), made in the app rather than by the
 * table's default gen_random_uuid(). Ids made later sort later, so the primary key takes new
 * rows at its right edge instead of at random leaf pages, and PostgreSQL skips its random
 * source, which cost ~3.6 µs a call here (gen_random_uuid() and uuidv7() alike). uuid 13's v7
 * takes ~0.6 µs in Node; uuid 14's asks crypto.getRandomValues for every id, 6–8 µs, so the
 * package stays on 13. The app's own inserts keep the table's default.
 */
export const newRowId = (): string => uuidv7();

/** `name type, …` for a recordset or a CREATE TABLE. */
export const usageColumnDefinitions = USAGE_COLUMNS.map((column) => `${column} ${USAGE_COLUMN_TYPES[column]}`).join(", ");

export interface IngestCounts {
  accepted: number;
  duplicates: number;
}

/**
 * INSERT … SELECT from `source` (a relation with `id` and the usage columns, aliased `src`)
 * into token_usage, skipping event_ids already stored; answers how many rows were inserted.
 * One statement: it succeeds or fails whole.
 */
export function insertUsageFrom(source: RawBuilder<unknown>): RawBuilder<{ accepted: number }> {
  const targets = sql.raw(`id, ${USAGE_COLUMNS.join(", ")}`);
  // created_at left out means "now", as the table's default would have it; metadata may come as
  // text (API batches, below) or jsonb (the import's staging table).
  const values = sql.raw(
    `src.id, ${USAGE_COLUMNS.map((c) => (c === "created_at" ? "coalesce(src.created_at, now())" : c === "metadata" ? "src.metadata::jsonb" : `src.${c}`)).join(", ")}`,
  );
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

/** The array type each column travels in; metadata as text, made jsonb row by row in the insert. */
const ARRAY_CASTS = USAGE_COLUMNS.map((column) => sql.raw(USAGE_COLUMN_TYPES[column] === "jsonb" ? "text[]" : `${USAGE_COLUMN_TYPES[column]}[]`));

/**
 * A batch as one typed array per column, read back as rows with `unnest`. PostgreSQL parses an
 * array element with its type's input function and nothing else; `json_to_recordset` parsed the
 * JSON text first and then each field's text again: 5.5–7.5 against 25–30 µs of PostgreSQL CPU
 * per event for a 1000-event batch, the Node side the same (~7–9 µs building either), 1M set,
 * 2026-11-30. pg writes each element quoted and escaped, NULL for null or absent.
 */
function columnArrays(events: UsageEvent[]): RawBuilder<unknown> {
  const ids = sql`${events.map(newRowId)}::uuid[]`;
  const arrays = USAGE_COLUMNS.map((column, index) => {
    const values = events.map((event) => (column === "metadata" ? JSON.stringify(event.metadata) : (event[column] ?? null)));
    return sql`${values}::${ARRAY_CASTS[index]}`;
  });
  return sql`unnest(${sql.join([ids, ...arrays])}) AS src(id, ${sql.raw(USAGE_COLUMNS.join(", "))})`;
}

/** Stores a validated batch in one round trip; repeats of stored or earlier event_ids are counted as duplicates. */
export async function insertUsageEvents(db: Kysely<Database> | Transaction<Database>, events: UsageEvent[]): Promise<IngestCounts> {
  const unique = firstOfEachEventId(events);
  const { rows } = await insertUsageFrom(columnArrays(unique)).execute(db);
  const accepted = rows[0]?.accepted ?? 0;
  return { accepted, duplicates: events.length - accepted };
}

/**
 * Backpressure. Pages add the rows the rollup job has not consumed yet (the queue tail), so a
 * queue that ingest outruns makes every dashboard read slower. When the queue holds more than
 * this many rows while a rollup job is consuming it, the ingest API answers 503 + Retry-After
 * instead of storing more; the client retries. Nothing is refused when nobody consumes the
 * queue (jobs off and no `cli rollup` running): refusing would then never end.
 */
export const INGEST_QUEUE_LIMIT = 100_000;
/** Seconds a refused client is asked to wait (the job consumes tens of thousands of rows a second). */
export const BACKPRESSURE_RETRY_AFTER_SECONDS = 1;
/** The queue's statistics are read at most this often per process. */
const PROBE_EVERY_MS = 250;
/** Rows left the queue this recently: a rollup job is consuming it (one batch can take seconds). */
const CONSUMING_WITHIN_MS = 15_000;

interface QueueState {
  checkedAt: number;
  /** Rows deleted from the queue so far (cumulative statistics), null before the first look. */
  consumed: number | null;
  consumedAt: number;
  overLimit: boolean;
  pending: Promise<void> | null;
}

const queueStates = new WeakMap<object, QueueState>();

/**
 * The queue's size and progress from PostgreSQL's cumulative statistics (live rows, rows deleted
 * so far), not from the queue itself: the rollup job deletes from its head, and until vacuum
 * removes those rows min(id) or count(*) would walk every one of them. The statistics lag
 * commits by about a second, well inside the bound's slack.
 */
async function probeQueue(db: Kysely<Database>, state: QueueState): Promise<void> {
  const { rows } = await sql<{ live: string | number | null; deleted: string | number | null }>`
    SELECT n_live_tup AS live, n_tup_del AS deleted FROM pg_stat_user_tables
    WHERE relid = 'tokenboard.usage_rollup_queue'::regclass`.execute(db);
  const now = Date.now();
  const backlog = Number(rows[0]?.live ?? 0);
  const consumed = Number(rows[0]?.deleted ?? 0);
  if (state.consumed !== null && consumed > state.consumed) state.consumedAt = now;
  state.consumed = consumed;
  state.overLimit = backlog > INGEST_QUEUE_LIMIT && now - state.consumedAt < CONSUMING_WITHIN_MS;
  state.checkedAt = now;
}

/**
 * Seconds to ask the caller to wait before sending more, or null to go ahead. Read from a
 * probe at most PROBE_EVERY_MS old, so it costs no round trip on most requests.
 */
export async function ingestBackpressure(db: Kysely<Database>): Promise<number | null> {
  let state = queueStates.get(db);
  if (!state) {
    state = { checkedAt: 0, consumed: null, consumedAt: Number.NEGATIVE_INFINITY, overLimit: false, pending: null };
    queueStates.set(db, state);
  }
  if (Date.now() - state.checkedAt >= PROBE_EVERY_MS) {
    const current = state;
    current.pending ??= probeQueue(db, current).finally(() => {
      current.pending = null;
    });
    await current.pending;
  }
  return state.overLimit ? BACKPRESSURE_RETRY_AFTER_SECONDS : null;
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
