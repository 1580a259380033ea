/**
 * OTLP/HTTP bodies both ways: an ExportTraceServiceRequest decoded from protobuf or JSON, and the
 * answers (ExportTraceServiceResponse, google.rpc.Status) encoded in the request's own format.
 * Protobuf goes through the protobufjs code that OpenTelemetry generates from opentelemetry-proto
 * and ships in @opentelemetry/otlp-transformer 0.57 (installed as otel-otlp-generated): the 0.301
 * line the exporters use ships encoders only.
 */
import { createRequire } from "node:module";
import protobuf from "protobufjs";

interface GeneratedMessageType {
  decode(reader: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(object: Record<string, unknown>): object;
  toObject(message: object, options: protobuf.IConversionOptions): Record<string, unknown>;
}

interface GeneratedRoot {
  opentelemetry: { proto: { collector: { trace: { v1: Record<"ExportTraceServiceRequest" | "ExportTraceServiceResponse", GeneratedMessageType> } } } };
}

// CommonJS, no exports map: required by path so that tsx, vitest and the server build load it alike.
const generated = createRequire(import.meta.url)("otel-otlp-generated/build/src/generated/root.js") as GeneratedRoot;
const { ExportTraceServiceRequest, ExportTraceServiceResponse } = generated.opentelemetry.proto.collector.trace.v1;

/**
 * google.rpc.Status as OTLP error answers carry it. Only its code and message: `details`
 * (field 3, repeated google.protobuf.Any) is never sent, so its definition is not needed.
 */
const STATUS_PROTO = `syntax = "proto3"; package google.rpc; message Status { int32 code = 1; string message = 2; }`;
const Status = protobuf.parse(STATUS_PROTO).root.lookupType("google.rpc.Status");

export type OtlpFormat = "protobuf" | "json";

export const OTLP_CONTENT_TYPES: Record<OtlpFormat, string> = { protobuf: "application/x-protobuf", json: "application/json" };

/** The OTLP encoding a Content-Type names, or null for any other type (415). */
export function otlpFormatOf(contentType: string | null): OtlpFormat | null {
  const type = contentType?.split(";")[0]?.trim().toLowerCase() ?? "";
  if (type === "application/x-protobuf" || type === "application/protobuf") return "protobuf";
  if (type === "application/json") return "json";
  return null;
}

export class UndecodableBodyError extends Error {}

/** Span fields of type `bytes`: OTLP/JSON writes them as hex, protobufjs's plain objects as base64. */
const ID_FIELDS = ["traceId", "spanId", "parentSpanId"] as const;

function idsAsHex(request: Record<string, unknown>): void {
  for (const resourceSpans of (request.resourceSpans as Record<string, unknown>[] | undefined) ?? []) {
    for (const scopeSpans of (resourceSpans.scopeSpans as Record<string, unknown>[] | undefined) ?? []) {
      for (const span of (scopeSpans.spans as Record<string, unknown>[] | undefined) ?? []) {
        for (const field of ID_FIELDS) {
          if (typeof span[field] === "string") span[field] = Buffer.from(span[field], "base64").toString("hex");
        }
      }
    }
  }
}

/**
 * The request as the plain object OTLP/JSON would have carried (lowerCamelCase fields, hex ids,
 * 64-bit integers as decimal strings, enums as numbers), so one zod schema reads both formats.
 */
export function decodeTraceRequest(body: Buffer, format: OtlpFormat): unknown {
  if (format === "json") {
    try {
      return JSON.parse(body.toString("utf8")) as unknown;
    } catch {
      throw new UndecodableBodyError("body is not valid JSON");
    }
  }
  let message: object;
  try {
    message = ExportTraceServiceRequest.decode(body);
  } catch (error) {
    throw new UndecodableBodyError(`body is not a protobuf ExportTraceServiceRequest (${(error as Error).message})`);
  }
  const plain = ExportTraceServiceRequest.toObject(message, { longs: String, enums: Number, bytes: String });
  idsAsHex(plain);
  return plain;
}

export interface PartialSuccess {
  rejectedSpans: number;
  errorMessage: string;
}

/** An ExportTraceServiceResponse; partial_success only when something is to be said (OTLP spec). */
export function encodeTraceResponse(format: OtlpFormat, partialSuccess: PartialSuccess | null): Uint8Array<ArrayBuffer> | string {
  if (format === "json") {
    // int64 as a decimal string, as the protobuf JSON mapping writes it.
    return JSON.stringify(partialSuccess ? { partialSuccess: { rejectedSpans: String(partialSuccess.rejectedSpans), errorMessage: partialSuccess.errorMessage } } : {});
  }
  const message = ExportTraceServiceResponse.fromObject(partialSuccess ? { partialSuccess } : {});
  // Its own ArrayBuffer (protobufjs may write into a shared pool), as a Response body takes it.
  return ExportTraceServiceResponse.encode(message).finish().slice();
}

/** google.rpc.Code for an HTTP error status, as the gRPC–HTTP mapping pairs them. */
function rpcCode(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
    case 413:
    case 415:
      return 3; // INVALID_ARGUMENT
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 429:
      return 8; // RESOURCE_EXHAUSTED
    case 503:
      return 14; // UNAVAILABLE
    default:
      return 13; // INTERNAL
  }
}

/** The body of an OTLP error answer: a google.rpc.Status in the request's format. */
export function encodeStatus(format: OtlpFormat, httpStatus: number, message: string): Uint8Array<ArrayBuffer> | string {
  const status = { code: rpcCode(httpStatus), message };
  if (format === "json") return JSON.stringify(status);
  return Status.encode(Status.fromObject(status)).finish().slice();
}
