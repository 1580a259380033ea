/**
 * POST /api/v1/usage — apps report AI calls here (see the Contract in the README).
 * Every answer, success or not, has the shape {accepted, duplicates, errors[, message]}, so a
 * client reads one format; a batch is stored whole or not at all.
 */
import type { ActionFunctionArgs } from "@remix-run/node";
import { requireApiAccess } from "~/lib/auth.server";
import { isJsonContentType, PayloadTooLargeError, readBodyText } from "~/lib/http.server";
import { MAX_INGEST_BODY_BYTES, parseUsageBatch, type BatchError } from "~/domain/usage-event";
import { databaseUnavailableResponse, getDb, isDatabaseUnavailable } from "~/lib/db.server";
import { logger } from "~/lib/logger.server";
import { metrics } from "~/lib/metrics.server";
import { constraintDriftMessage, ingestBackpressure, insertUsageEvents } from "~/models/usage-ingest.server";

export const MAX_BODY_BYTES = MAX_INGEST_BODY_BYTES;

interface IngestAnswer {
  accepted: number;
  duplicates: number;
  errors: BatchError[];
  message?: string;
}

function answer(status: number, body: Partial<IngestAnswer>, headers: HeadersInit = {}): Response {
  const full: IngestAnswer = { accepted: 0, duplicates: 0, errors: [], ...body };
  return Response.json(full, { status, headers });
}

function refusal(status: number, message: string, headers: HeadersInit = {}): Response {
  return answer(status, { message }, headers);
}

/** Shared helpers answer {error} or {message}; the ingest API keeps its own shape for every status. */
async function reshapeRefusal(response: Response): Promise<Response> {
  const body = (await response.json().catch(() => ({}))) as { error?: string; message?: string };
  const headers: Record<string, string> = {};
  for (const name of ["www-authenticate", "retry-after"]) {
    const value = response.headers.get(name);
    if (value) headers[name] = value;
  }
  return refusal(response.status, body.error ?? body.message ?? "not allowed", headers);
}

// Nothing is read on GET, so a wrong method is answered before asking for credentials.
export function loader() {
  return refusal(405, "use POST with a JSON body {\"events\":[…]}", { allow: "POST" });
}

async function ingest(request: Request): Promise<Response> {
  if (request.method !== "POST") return loader();
  try {
    await requireApiAccess(request, "ingest");
  } catch (thrown) {
    if (thrown instanceof Response) return reshapeRefusal(thrown);
    throw thrown;
  }
  if (!isJsonContentType(request.headers.get("content-type"))) {
    return refusal(415, "content-type must be application/json");
  }
  // Before reading the body: under backpressure a batch costs the server nothing.
  const wait = await ingestBackpressure(getDb());
  if (wait !== null) {
    return refusal(503, `tokenboard is behind on rolling up usage; nothing was stored. Retry in ${wait} s`, { "retry-after": String(wait) });
  }
  let text: string;
  try {
    text = await readBodyText(request, MAX_BODY_BYTES);
  } catch (error) {
    if (error instanceof PayloadTooLargeError) {
      return refusal(413, `body is larger than ${MAX_BODY_BYTES} bytes; send at most 1000 events per request`);
    }
    throw error;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return refusal(400, "body is not valid JSON");
  }
  const batch = parseUsageBatch(body);
  if (batch.kind === "malformed") return refusal(400, batch.message);
  if (batch.kind === "invalid") {
    const events = (body as { events?: unknown }).events;
    metrics().ingestEvents.inc({ outcome: "rejected" }, Array.isArray(events) ? events.length : 0);
    return answer(422, { errors: batch.errors, message: `${batch.errors.length} error(s); nothing was stored` });
  }
  const counts = await insertUsageEvents(getDb(), batch.events);
  metrics().ingestEvents.inc({ outcome: "accepted" }, counts.accepted);
  metrics().ingestEvents.inc({ outcome: "duplicate" }, counts.duplicates);
  logger.debug({ accepted: counts.accepted, duplicates: counts.duplicates }, "usage batch stored");
  return answer(200, counts);
}

export async function action({ request }: ActionFunctionArgs) {
  const timer = metrics().ingestBatchSeconds.startTimer();
  let response: Response;
  try {
    response = await ingest(request);
  } catch (error) {
    if (isDatabaseUnavailable(error)) response = await reshapeRefusal(databaseUnavailableResponse(true));
    else {
      // The cause goes to the server log; the caller learns that nothing was stored and, for a
      // drifted constraint, what fixes it, never the SQL.
      logger.error({ err: error }, "POST /api/v1/usage failed");
      response = refusal(500, constraintDriftMessage(error) ?? "the batch could not be stored; nothing was stored");
    }
  }
  timer({ status: response.status });
  return response;
}
