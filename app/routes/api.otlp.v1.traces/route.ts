/**
 * POST /api/otlp/v1/traces — OTLP/HTTP trace export (an exporter's endpoint is `<base>/api/otlp`).
 * GenAI spans become token_usage rows (docs/otlp.md); answers follow the OTLP/HTTP specification:
 * 200 with an ExportTraceServiceResponse (partial_success when spans were rejected), errors as a
 * google.rpc.Status, each in the request's encoding.
 */
import { gunzip } from "node:zlib";
import { promisify } from "node:util";
import type { ActionFunctionArgs } from "@remix-run/node";
import { decodeTraceRequest, encodeStatus, encodeTraceResponse, OTLP_CONTENT_TYPES, otlpFormatOf, UndecodableBodyError, type OtlpFormat } from "~/features/otlp/codec.server";
import { ingestTraceRequest, type TraceIngestResult } from "~/features/otlp/service.server";
import { requireApiAccess } from "~/lib/auth.server";
import { databaseUnavailableResponse, getDb, isDatabaseUnavailable } from "~/lib/db.server";
import { PayloadTooLargeError, readBodyBytes } from "~/lib/http.server";
import { MAX_INGEST_BODY_BYTES } from "~/domain/usage-event";
import { constraintDriftMessage, ingestBackpressure } from "~/models/usage-ingest.server";

/** A gzip body may not inflate past this: span attributes carry prompts, a bomb must not fill memory. */
export const MAX_INFLATED_BYTES = 4 * MAX_INGEST_BODY_BYTES;

const gunzipAsync = promisify(gunzip);

function failure(format: OtlpFormat, status: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(encodeStatus(format, status, message), { status, headers: { "content-type": OTLP_CONTENT_TYPES[format], ...headers } });
}

function success(format: OtlpFormat, result: TraceIngestResult): Response {
  const partialSuccess =
    result.rejected > 0
      ? {
          rejectedSpans: result.rejected,
          errorMessage: `${result.rejected} span(s) rejected, nothing stored for them: ${result.reasons.join(" | ")}${result.rejected > result.reasons.length ? " | …" : ""}`,
        }
      : null;
  return new Response(encodeTraceResponse(format, partialSuccess), {
    status: 200,
    headers: {
      "content-type": OTLP_CONTENT_TYPES[format],
      // What the OTLP answer has no field for; exporters ignore these.
      "x-tokenboard-stored": String(result.stored),
      "x-tokenboard-duplicates": String(result.duplicates),
      "x-tokenboard-skipped": String(result.skipped),
      "x-tokenboard-rejected": String(result.rejected),
    },
  });
}

/** A thrown auth or availability answer ({error} JSON) in the OTLP error shape. */
async function asStatus(format: OtlpFormat, response: Response): Promise<Response> {
  const body = (await response.json().catch(() => ({}))) as { error?: string; message?: string };
  const headers: Record<string, string> = {};
  for (const name of ["www-authenticate", "retry-after"]) {
    const value = response.headers.get(name);
    if (value) headers[name] = value;
  }
  return failure(format, response.status, body.error ?? body.message ?? "not allowed", headers);
}

export function loader() {
  return failure("json", 405, "use POST with an OTLP ExportTraceServiceRequest (application/x-protobuf or application/json)", { allow: "POST" });
}

async function inflate(body: Buffer, encoding: string): Promise<Buffer> {
  if (encoding !== "gzip") return body;
  try {
    return await gunzipAsync(body, { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw new PayloadTooLargeError(MAX_INFLATED_BYTES);
    throw new UndecodableBodyError("body is not valid gzip");
  }
}

async function exportTraces(request: Request, format: OtlpFormat): Promise<Response> {
  try {
    await requireApiAccess(request, "ingest");
  } catch (thrown) {
    if (thrown instanceof Response) return asStatus(format, thrown);
    throw thrown;
  }
  if (otlpFormatOf(request.headers.get("content-type")) === null) {
    return failure(format, 415, "content-type must be application/x-protobuf or application/json");
  }
  const encoding = (request.headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  if (encoding !== "gzip" && encoding !== "identity") return failure(format, 415, "content-encoding must be gzip or identity");
  // Before reading the body, as /api/v1/usage: under backpressure an export costs the server nothing.
  const wait = await ingestBackpressure(getDb());
  if (wait !== null) {
    return failure(format, 503, `tokenboard is behind on rolling up usage; nothing was stored. Retry in ${wait} s`, { "retry-after": String(wait) });
  }
  let decoded: unknown;
  try {
    decoded = decodeTraceRequest(await inflate(await readBodyBytes(request, MAX_INGEST_BODY_BYTES), encoding), format);
  } catch (error) {
    if (error instanceof PayloadTooLargeError) return failure(format, 413, `body is larger than ${error.limit} bytes; export smaller batches`);
    if (error instanceof UndecodableBodyError) return failure(format, 400, error.message);
    throw error;
  }
  const outcome = await ingestTraceRequest(getDb(), decoded, format);
  if (outcome.kind === "malformed") return failure(format, 400, outcome.message);
  if (outcome.kind === "too-many") return failure(format, 413, outcome.message);
  return success(format, outcome.result);
}

export async function action({ request }: ActionFunctionArgs) {
  // Errors are answered in the request's encoding; JSON when it names neither.
  const format = otlpFormatOf(request.headers.get("content-type")) ?? "json";
  if (request.method !== "POST") return loader();
  try {
    return await exportTraces(request, format);
  } catch (error) {
    if (isDatabaseUnavailable(error)) return asStatus(format, databaseUnavailableResponse(true));
    console.error("POST /api/otlp/v1/traces failed:", error);
    return failure(format, 500, constraintDriftMessage(error) ?? "the spans could not be stored; nothing was stored");
  }
}
