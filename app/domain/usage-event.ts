/**
 * One usage event as an app reports it: a row of `token_usage` before tokenboard stores it.
 * The same schema validates POST /api/v1/usage bodies and lines of `cli import-usage`, so an
 * event the API refuses is refused by the import with the same message.
 */
import { datetimeRegex, z } from "zod";
import { actionTypeSchema } from "./action-types";
import { metadataProblem } from "./inputs";
import { STORABLE_TEXT, UNSTORABLE_MESSAGE } from "./storable-text";

const INT4_MAX = 2_147_483_647;
/** numeric(12,4) and numeric(10,2) both hold values below 10^8. */
const NUMERIC_MAX = 99_999_999;
const FUTURE_TOLERANCE_MS = 24 * 60 * 60 * 1000;
const EARLIEST = Date.UTC(2000, 0, 1);

// STORABLE_TEXT: a regex check, not a zod refinement: refinements cost several µs per field,
// and 1000-event batches must validate in a few milliseconds.

const text = (max: number) =>
  z
    .string({ required_error: "is required", invalid_type_error: `must be text of at most ${max} characters` })
    .max(max, `must be text of at most ${max} characters`)
    .regex(STORABLE_TEXT, UNSTORABLE_MESSAGE);

const count = () =>
  z
    .number({ required_error: "is required", invalid_type_error: "must be an integer ≥ 0" })
    .int("must be an integer ≥ 0")
    .min(0, "must be an integer ≥ 0")
    .max(INT4_MAX, `must be an integer ≤ ${INT4_MAX}`);

const amount = () =>
  z
    .number({ invalid_type_error: `must be a number from 0 to ${NUMERIC_MAX}` })
    .min(0, `must be a number from 0 to ${NUMERIC_MAX}`)
    .max(NUMERIC_MAX, `must be a number from 0 to ${NUMERIC_MAX}`);

const DATE_TIME_MESSAGE = "must be an ISO 8601 date-time with offset, e.g. 2025-01-31T12:00:00Z";

/**
 * zod's own `.datetime({ offset: true })` pattern, compiled once: `.datetime()` compiles it anew
 * for every value it checks, which cost more than the rest of an event's validation.
 */
const DATE_TIME = datetimeRegex({ offset: true, local: false, precision: null });

/** Its range (not in the future, not before 2000) is checked in validateUsageEvent. */
const instant = () => z.string({ invalid_type_error: DATE_TIME_MESSAGE }).regex(DATE_TIME, DATE_TIME_MESSAGE);

export const RECONCILIATION_STATUSES = ["pending", "matched", "discrepancy", "not_applicable"] as const;

/**
 * Columns of token_usage an app may send. `id` is not one of them: tokenboard assigns ids, and
 * `event_id` is the key that makes retries idempotent. Optional columns left out get the
 * table's defaults (created_at: the time the database stores the event).
 */
export const usageEventSchema = z
  .object({
    user_id: z.string({ required_error: "is required", invalid_type_error: "must be a UUID" }).uuid("must be a UUID"),
    action_type: z.string({ required_error: "is required", invalid_type_error: "must be text naming a registered action type" }).pipe(actionTypeSchema),
    model_used: text(200).min(1, "must not be empty"),
    tokens_used: count(),
    input_tokens: count().nullable().default(0),
    output_tokens: count().nullable().default(0),
    success: z.boolean({ invalid_type_error: "must be true or false" }).default(true),
    error_message: text(10_000).nullable().optional(),
    metadata: z.record(z.unknown(), { invalid_type_error: "must be a JSON object" }).default({}),
    created_at: instant().optional(),
    calculated_cost_cents: amount().nullable().optional(),
    audio_seconds: amount().nullable().optional(),
    audio_duration_formatted: text(50).nullable().optional(),
    openai_request_id: text(200).nullable().optional(),
    openai_created: z
      .number({ invalid_type_error: "must be an integer ≥ 0 (Unix seconds)" })
      .int("must be an integer ≥ 0 (Unix seconds)")
      .min(0, "must be an integer ≥ 0 (Unix seconds)")
      .max(Number.MAX_SAFE_INTEGER, "must be an integer ≥ 0 (Unix seconds)")
      .nullable()
      .optional(),
    system_fingerprint: text(200).nullable().optional(),
    actual_cost_cents: amount().nullable().optional(),
    reconciled_at: instant().nullable().optional(),
    reconciliation_status: z
      .enum(RECONCILIATION_STATUSES, { errorMap: () => ({ message: `must be one of ${RECONCILIATION_STATUSES.join(", ")}` }) })
      .default("pending"),
    route: text(500).nullable().optional(),
    event_id: text(200).min(1, "must not be empty").nullable().optional(),
  })
  .strip();

export type UsageEvent = z.output<typeof usageEventSchema>;
export type UsageEventInput = z.input<typeof usageEventSchema>;
export type UsageEventField = keyof UsageEvent;

export const USAGE_EVENT_FIELDS = Object.keys(usageEventSchema.shape) as UsageEventField[];

/** Fields without a default: a CSV header must name them, an event must carry them. */
export const REQUIRED_USAGE_FIELDS: readonly UsageEventField[] = USAGE_EVENT_FIELDS.filter(
  (field) => !usageEventSchema.shape[field].isOptional(),
);

const knownFields = new Set<string>(USAGE_EVENT_FIELDS);

export function unknownFieldMessage(field: string): string {
  return field === "id"
    ? "unknown field: tokenboard assigns ids; send event_id to make retries idempotent"
    : `unknown field; allowed: ${USAGE_EVENT_FIELDS.join(", ")}`;
}

export interface FieldProblem {
  /** The field's name, or "" when the event itself is wrong (e.g. not an object). */
  field: string;
  message: string;
}

export type EventValidation = { ok: true; event: UsageEvent } | { ok: false; problems: FieldProblem[] };

/**
 * Checks zod's schema cannot express cheaply, on the raw event; fields zod already refused
 * are skipped, so every field carries at most one message.
 */
function crossFieldProblems(input: Record<string, unknown>, refused: Set<string>, now: number): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const field of ["created_at", "reconciled_at"] as const) {
    const value = input[field];
    if (typeof value !== "string" || refused.has(field)) continue;
    const at = Date.parse(value);
    if (Number.isNaN(at)) problems.push({ field, message: DATE_TIME_MESSAGE });
    else if (at > now + FUTURE_TOLERANCE_MS) problems.push({ field, message: "is more than 1 day in the future" });
    else if (at < EARLIEST) problems.push({ field, message: "is before 2000-01-01" });
  }
  const metadata = refused.has("metadata") ? null : metadataProblem(input.metadata);
  if (metadata) problems.push({ field: "metadata", message: metadata });
  // token_usage_reconciliation_consistency_check, as a message instead of a refused batch.
  const reconciliationKnown = !refused.has("reconciled_at") && !refused.has("actual_cost_cents");
  if (reconciliationKnown && (input.reconciled_at == null) !== (input.actual_cost_cents == null)) {
    problems.push({ field: "reconciled_at", message: "must be set together with actual_cost_cents (both or neither)" });
  }
  return problems;
}

/** Every problem of one event, unknown fields included, each named by its field. */
export function validateUsageEvent(input: unknown, now = Date.now()): EventValidation {
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    return { ok: false, problems: [{ field: "", message: "must be a JSON object of token_usage fields" }] };
  }
  const problems: FieldProblem[] = Object.keys(input)
    .filter((key) => !knownFields.has(key))
    .map((key) => ({ field: key, message: unknownFieldMessage(key) }));
  const parsed = usageEventSchema.safeParse(input);
  const refused = new Set<string>();
  for (const issue of parsed.success ? [] : parsed.error.issues) {
    const field = issue.path.map(String).join(".");
    if (refused.has(field)) continue;
    refused.add(field);
    problems.push({ field, message: issue.message });
  }
  problems.push(...crossFieldProblems(input as Record<string, unknown>, refused, now));
  if (problems.length > 0 || !parsed.success) return { ok: false, problems };
  return { ok: true, event: parsed.data };
}

/** "events[3].tokens_used: must be an integer ≥ 0" — the form every ingest error takes. */
export function describeProblem(prefix: string, problem: FieldProblem): string {
  return problem.field ? `${prefix}.${problem.field}: ${problem.message}` : `${prefix}: ${problem.message}`;
}

type CsvKind = "number" | "boolean" | "json" | "text";

const CSV_KINDS: Partial<Record<UsageEventField, CsvKind>> = {
  tokens_used: "number",
  input_tokens: "number",
  output_tokens: "number",
  calculated_cost_cents: "number",
  audio_seconds: "number",
  openai_created: "number",
  actual_cost_cents: "number",
  success: "boolean",
  metadata: "json",
};

const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const BOOLEANS: Record<string, boolean> = { true: true, t: true, "1": true, yes: true, false: false, f: false, "0": false, no: false };

function fromCsvCell(kind: CsvKind, cell: string): unknown {
  const trimmed = cell.trim();
  switch (kind) {
    case "number":
      // Anything that is not plainly a number stays text, so the schema names it.
      return NUMBER_TEXT.test(trimmed) ? Number(trimmed) : cell;
    case "boolean":
      return BOOLEANS[trimmed.toLowerCase()] ?? cell;
    case "json":
      try {
        return JSON.parse(cell) as unknown;
      } catch {
        return cell;
      }
    case "text":
      return cell;
  }
}

/**
 * A CSV line (header → cell text) as the event the API would receive: an empty cell is an
 * absent field (so defaults apply), numbers, booleans and JSON are read from their text.
 */
export function csvRecordToEventInput(record: Record<string, string>): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  for (const [field, cell] of Object.entries(record)) {
    if (cell === "") continue;
    event[field] = fromCsvCell(CSV_KINDS[field as UsageEventField] ?? "text", cell);
  }
  return event;
}

export type HeaderCheck = { ok: true; columns: UsageEventField[] } | { ok: false; messages: string[] };

/** A CSV header must name known fields, each once, and every required one. */
export function checkCsvHeader(header: readonly string[]): HeaderCheck {
  const messages: string[] = [];
  const seen = new Set<string>();
  for (const raw of header) {
    const column = raw.trim();
    if (!knownFields.has(column)) messages.push(`column ${JSON.stringify(column)}: ${unknownFieldMessage(column)}`);
    else if (seen.has(column)) messages.push(`column ${JSON.stringify(column)} appears twice`);
    seen.add(column);
  }
  for (const field of REQUIRED_USAGE_FIELDS) {
    if (!seen.has(field)) messages.push(`missing required column ${JSON.stringify(field)}`);
  }
  return messages.length ? { ok: false, messages } : { ok: true, columns: header.map((c) => c.trim() as UsageEventField) };
}

export const MAX_BATCH_EVENTS = 1000;

/** 1000 events with ordinary metadata stay far below this; larger bodies are refused unread (the usage API and OTLP). */
export const MAX_INGEST_BODY_BYTES = 2 * 1024 * 1024;

export interface BatchError {
  index: number;
  message: string;
}

export type BatchParse =
  | { kind: "ok"; events: UsageEvent[] }
  /** The body is not a batch at all (400). */
  | { kind: "malformed"; message: string }
  /** A batch with invalid events (422): every error of every event. */
  | { kind: "invalid"; errors: BatchError[] };

/** A decoded POST /api/v1/usage body: `{"events":[…]}` with 1–1000 valid events, or what is wrong. */
export function parseUsageBatch(body: unknown): BatchParse {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    return { kind: "malformed", message: 'body must be a JSON object: {"events":[…]}' };
  }
  const extra = Object.keys(body).filter((key) => key !== "events");
  if (extra.length > 0) return { kind: "malformed", message: `${extra[0]}: unknown field; the body has only "events"` };
  const events = (body as { events?: unknown }).events;
  if (events === undefined) return { kind: "malformed", message: 'events: is required: {"events":[…]}' };
  if (!Array.isArray(events)) return { kind: "malformed", message: "events: must be an array of events" };
  if (events.length < 1 || events.length > MAX_BATCH_EVENTS) {
    return { kind: "malformed", message: `events: must hold 1 to ${MAX_BATCH_EVENTS} events, got ${events.length}` };
  }
  const valid: UsageEvent[] = [];
  const errors: BatchError[] = [];
  events.forEach((input, index) => {
    const result = validateUsageEvent(input);
    if (result.ok) valid.push(result.event);
    else for (const problem of result.problems) errors.push({ index, message: describeProblem(`events[${index}]`, problem) });
  });
  return errors.length ? { kind: "invalid", errors } : { kind: "ok", events: valid };
}
