/**
 * OTLP trace ingest: a decoded ExportTraceServiceRequest stored as token_usage rows through the
 * same validation and the same idempotent insert as POST /api/v1/usage.
 */
import type { Kysely } from "kysely";
import type { Database } from "../../../db/types";
import { describeProblem, MAX_BATCH_EVENTS, validateUsageEvent, type UsageEvent } from "~/domain/usage-event";
import { insertUsageEvents } from "~/models/usage-ingest.server";
import type { OtlpFormat } from "./codec.server";
import { FIELD_SOURCES, spansToUsage, traceRequestSchema, type TraceRequest } from "./rules";

/** At most this many spans per request, as /api/v1/usage takes at most this many events (exporters send 512 by default). */
export const MAX_SPANS_PER_REQUEST = MAX_BATCH_EVENTS;
/** Rejection reasons written out in partial_success.error_message; the rest are counted. */
const REASONS_LISTED = 10;

export interface TraceIngestResult {
  stored: number;
  duplicates: number;
  /** Spans without GenAI usage. */
  skipped: number;
  rejected: number;
  /** Why spans were rejected, one line each (the first REASONS_LISTED). */
  reasons: string[];
}

export type TraceIngest = { kind: "malformed"; message: string } | { kind: "too-many"; message: string } | { kind: "done"; result: TraceIngestResult };

/** "user_id (from enduser.id / user.id): must be a UUID" — the field and the attributes it comes from. */
function withSource(message: string): string {
  const field = /^event\.(\w+)/.exec(message)?.[1];
  const rest = message.replace(/^event\.\w+: /, "").replace(/^event: /, "");
  return field && FIELD_SOURCES[field] ? `${field} (from ${FIELD_SOURCES[field]}): ${rest}` : field ? `${field}: ${rest}` : rest;
}

/**
 * A decoded request stored. A JSON body is checked against the zod schema of the request; a
 * protobuf one was already read field by field against the .proto schema by protobufjs, which
 * types every field the schema names (checking it again cost about as much as decoding it).
 */
export async function ingestTraceRequest(db: Kysely<Database>, body: unknown, format: OtlpFormat): Promise<TraceIngest> {
  let request: TraceRequest;
  if (format === "protobuf") request = body as TraceRequest;
  else {
    const parsed = traceRequestSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return { kind: "malformed", message: `${issue?.path.join(".") || "body"}: ${issue?.message ?? "is not an ExportTraceServiceRequest"}` };
    }
    request = parsed.data;
  }
  const outcomes = spansToUsage(request);
  if (outcomes.length > MAX_SPANS_PER_REQUEST) {
    return { kind: "too-many", message: `the request holds ${outcomes.length} spans; send at most ${MAX_SPANS_PER_REQUEST} (the batch span processor's maxExportBatchSize)` };
  }
  const events: UsageEvent[] = [];
  const reasons: string[] = [];
  let skipped = 0;
  let rejected = 0;
  const reject = (line: string) => {
    rejected++;
    if (reasons.length < REASONS_LISTED) reasons.push(line);
  };
  for (const outcome of outcomes) {
    if (outcome.kind === "skipped") skipped++;
    else if (outcome.kind === "rejected") reject(`${outcome.label}: ${outcome.reason}`);
    else {
      const validation = validateUsageEvent(outcome.event);
      if (validation.ok) events.push(validation.event);
      else reject(`${outcome.label}: ${validation.problems.map((p) => withSource(describeProblem("event", p))).join("; ")}`);
    }
  }
  const counts = events.length ? await insertUsageEvents(db, events) : { accepted: 0, duplicates: 0 };
  return { kind: "done", result: { stored: counts.accepted, duplicates: counts.duplicates, skipped, rejected, reasons } };
}
