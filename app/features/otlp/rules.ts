/**
 * OTLP trace requests as usage events: which spans carry GenAI usage, and the token_usage row each
 * becomes (docs/otlp.md). Pure: the events go on to the same validation and insert as
 * POST /api/v1/usage.
 */
import { v5 as uuidv5 } from "uuid";
import { z } from "zod";
import { actionTypeForSpan } from "~/domain/action-types";

const int64 = z.union([z.string(), z.number()]);

/** An AnyValue; arrays, maps and bytes are read as absent (no usage field is one). */
const anyValueSchema = z.object({
  stringValue: z.string().optional(),
  boolValue: z.boolean().optional(),
  intValue: int64.optional(),
  // The protobuf JSON mapping writes NaN and the infinities as strings.
  doubleValue: z.union([z.number(), z.string()]).optional(),
});

const keyValueSchema = z.object({ key: z.string(), value: anyValueSchema.nullish() });
const attributesSchema = z.array(keyValueSchema).nullish();

const spanSchema = z.object({
  traceId: z.string().nullish(),
  spanId: z.string().nullish(),
  parentSpanId: z.string().nullish(),
  name: z.string().nullish(),
  startTimeUnixNano: int64.nullish(),
  attributes: attributesSchema,
  status: z.object({ code: z.union([z.number(), z.string()]).nullish(), message: z.string().nullish() }).nullish(),
});

/**
 * An ExportTraceServiceRequest as OTLP/JSON carries it (the protobuf path decodes to the same
 * shape). Unknown fields are ignored, as the OTLP specification asks of receivers.
 */
export const traceRequestSchema = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: attributesSchema }).nullish(),
        scopeSpans: z.array(z.object({ spans: z.array(spanSchema).nullish() })).nullish(),
      }),
    )
    .nullish(),
});

export type TraceRequest = z.output<typeof traceRequestSchema>;
type Span = z.output<typeof spanSchema>;
type Attributes = z.output<typeof attributesSchema>;
type Primitive = string | number | boolean;

/** The first of these attributes a span carries is used (GenAI conventions, then older or other SDKs' names). */
export const USAGE_ATTRIBUTES = {
  input: ["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"],
  output: ["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"],
  cacheRead: [
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.input_tokens.cached",
    "ai.usage.cachedInputTokens",
    "llm.token_count.prompt_details.cache_read",
  ],
  cacheCreation: [
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.input_tokens.cache_write",
    "llm.token_count.prompt_details.cache_write",
  ],
  reasoning: [
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.output_tokens.reasoning",
    "gen_ai.usage.reasoning_tokens",
    "ai.usage.reasoningTokens",
    "llm.token_count.completion_details.reasoning",
  ],
  model: ["gen_ai.response.model", "gen_ai.request.model", "llm.model_name"],
} as const;

/** Looked up on the span, then on its ancestors in the same request (an AI span's route is on the server span above it). */
export const CONTEXT_ATTRIBUTES = {
  actionType: ["tokenboard.action_type"],
  user: ["enduser.id", "user.id", "ai.telemetry.metadata.userId"],
  route: ["http.route"],
} as const;

/** The Vercel AI SDK puts `experimental_telemetry.metadata` on its spans under this prefix. */
const METADATA_PREFIX = "ai.telemetry.metadata.";

/**
 * Non-UUID user ids (token_usage.user_id is a uuid) become the UUIDv5 of the id in this namespace,
 * so the same app user always lands on the same row owner; the original id is kept in metadata.
 */
export const USER_ID_NAMESPACE = "6f1d8d0e-3c1b-5f0a-9a57-2c1e7b1f0c42";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const STATUS_ERROR = 2;
const MAX_ANCESTORS = 64;

function primitive(value: z.output<typeof anyValueSchema> | null | undefined): Primitive | null {
  if (!value) return null;
  if (value.stringValue != null) return value.stringValue;
  if (value.intValue != null) return Number(value.intValue);
  if (value.doubleValue != null) return Number(value.doubleValue);
  if (value.boolValue != null) return value.boolValue;
  return null;
}

function attributeMap(attributes: Attributes): Map<string, Primitive> {
  const map = new Map<string, Primitive>();
  for (const { key, value } of attributes ?? []) {
    const read = primitive(value);
    if (read !== null) map.set(key, read);
  }
  return map;
}

/** Each name, then each name under the AI SDK's metadata prefix, made once per list. */
const lookupNames = new WeakMap<readonly string[], string[]>();

function first(attributes: Map<string, Primitive>, names: readonly string[]): Primitive | null {
  let candidates = lookupNames.get(names);
  if (!candidates) {
    candidates = names.flatMap((name) => [name, METADATA_PREFIX + name]);
    lookupNames.set(names, candidates);
  }
  for (const name of candidates) {
    const value = attributes.get(name);
    if (value !== undefined) return value;
  }
  return null;
}

/** A token count as the usage schema reads it: integer text becomes a number, anything else stays for its message. */
function tokenCount(value: Primitive | null): unknown {
  if (typeof value === "string" && /^\d+$/.test(value.trim())) return Number(value);
  return value;
}

const text = (value: Primitive | null): string | null => (value === null || value === "" ? null : String(value));

/** Nanoseconds since the epoch as an ISO date-time to the microsecond, or the raw text when out of range (refused by validation). */
export function isoFromUnixNanos(nanos: string | number): string | undefined {
  let value: bigint;
  try {
    value = BigInt(nanos);
  } catch {
    return String(nanos);
  }
  if (value === 0n) return undefined; // unset in proto3: stored as "now"
  const millis = Number(value / 1_000_000n);
  if (millis < 0 || millis > 8.64e15) return String(nanos);
  const micros = String(Number((value / 1000n) % 1000n)).padStart(3, "0");
  return new Date(millis).toISOString().replace("Z", `${micros}Z`);
}

interface IndexedSpan {
  span: Span;
  attributes: Map<string, Primitive>;
  resource: Map<string, Primitive>;
}

export type SpanOutcome =
  /** A GenAI span with usage: the event input for the usage schema, and where each field came from. */
  | { kind: "usage"; label: string; event: Record<string, unknown> }
  | { kind: "skipped" }
  | { kind: "rejected"; label: string; reason: string };

/** How a span is named in a rejection: its name and ids, so a developer can find it in their tracing. */
function labelOf(span: Span, traceId: string, spanId: string): string {
  return `span ${JSON.stringify(span.name ?? "")} (trace ${traceId || "?"}, span ${spanId || "?"})`;
}

/** The attribute names each usage field is read from, for rejection messages. */
export const FIELD_SOURCES: Record<string, string> = {
  user_id: CONTEXT_ATTRIBUTES.user.join(" / "),
  action_type: "tokenboard.action_type or the registry's span mapping",
  model_used: USAGE_ATTRIBUTES.model.join(" / "),
  tokens_used: "input + output tokens",
  input_tokens: USAGE_ATTRIBUTES.input.join(" / "),
  output_tokens: USAGE_ATTRIBUTES.output.join(" / "),
  route: "http.route",
  created_at: "startTimeUnixNano",
  error_message: "status.message",
  metadata: "span attributes",
};

/** Every span of a request with its outcome, in request order. */
export function spansToUsage(request: TraceRequest): SpanOutcome[] {
  const indexed: IndexedSpan[] = [];
  const byId = new Map<string, IndexedSpan>();
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resource = attributeMap(resourceSpans.resource?.attributes);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        const entry = { span, attributes: attributeMap(span.attributes), resource };
        indexed.push(entry);
        if (span.spanId) byId.set(`${span.traceId?.toLowerCase()}/${span.spanId.toLowerCase()}`, entry);
      }
    }
  }
  /** The span's own attribute, else its nearest ancestor's within this request. */
  const inherited = (entry: IndexedSpan, names: readonly string[]): Primitive | null => {
    let current: IndexedSpan | undefined = entry;
    for (let depth = 0; current && depth < MAX_ANCESTORS; depth++) {
      const value = first(current.attributes, names);
      if (value !== null) return value;
      const parent: string | null | undefined = current.span.parentSpanId;
      current = parent ? byId.get(`${current.span.traceId?.toLowerCase()}/${parent.toLowerCase()}`) : undefined;
    }
    return null;
  };
  return indexed.map((entry) => spanToUsage(entry, inherited));
}

function spanToUsage(entry: IndexedSpan, inherited: (entry: IndexedSpan, names: readonly string[]) => Primitive | null): SpanOutcome {
  const { span, attributes } = entry;
  const input = first(attributes, USAGE_ATTRIBUTES.input);
  const output = first(attributes, USAGE_ATTRIBUTES.output);
  if (input === null && output === null) return { kind: "skipped" };

  const traceId = (span.traceId ?? "").toLowerCase();
  const spanId = (span.spanId ?? "").toLowerCase();
  const label = labelOf(span, traceId, spanId);
  if (!TRACE_ID.test(traceId) || /^0+$/.test(traceId)) return { kind: "rejected", label, reason: "traceId: must be 16 bytes, not all zero" };
  if (!SPAN_ID.test(spanId) || /^0+$/.test(spanId)) return { kind: "rejected", label, reason: "spanId: must be 8 bytes, not all zero" };

  const route = text(inherited(entry, CONTEXT_ATTRIBUTES.route));
  const operation = text(attributes.get("gen_ai.operation.name") ?? null);
  const explicitType = text(inherited(entry, CONTEXT_ATTRIBUTES.actionType));
  const actionType = explicitType ?? actionTypeForSpan({ operation, spanName: span.name ?? "", route });
  if (actionType === null) {
    return {
      kind: "rejected",
      label,
      reason:
        `no action type: gen_ai.operation.name ${JSON.stringify(operation)}, http.route ${JSON.stringify(route)} match no mapping; ` +
        "set the tokenboard.action_type attribute or add a mapping to the registry (SPAN_ACTION_MAPPINGS); " +
        "unregistered types cannot be stored (token_usage_action_type_check)",
    };
  }

  const rawUser = text(inherited(entry, CONTEXT_ATTRIBUTES.user));
  if (rawUser === null) return { kind: "rejected", label, reason: `user_id: is required: set ${FIELD_SOURCES.user_id}` };
  const userIsUuid = UUID.test(rawUser);

  const metadata: Record<string, unknown> = { source: "otlp", trace_id: traceId, span_id: spanId, span_name: span.name ?? "" };
  const optional: [string, Primitive | null][] = [
    ["operation", operation],
    ["provider", attributes.get("gen_ai.provider.name") ?? attributes.get("gen_ai.system") ?? null],
    ["response_id", attributes.get("gen_ai.response.id") ?? null],
    ["function_id", attributes.get("ai.telemetry.functionId") ?? null],
    ["service_name", entry.resource.get("service.name") ?? null],
    ["cache_read_input_tokens", first(attributes, USAGE_ATTRIBUTES.cacheRead)],
    ["cache_creation_input_tokens", first(attributes, USAGE_ATTRIBUTES.cacheCreation)],
    ["reasoning_output_tokens", first(attributes, USAGE_ATTRIBUTES.reasoning)],
    ["otel_user_id", userIsUuid ? null : rawUser],
  ];
  for (const [key, value] of optional) if (value !== null) metadata[key] = value;

  const inputTokens = tokenCount(input) ?? 0;
  const outputTokens = tokenCount(output) ?? 0;
  const failed = span.status?.code === STATUS_ERROR || span.status?.code === "STATUS_CODE_ERROR";
  const event: Record<string, unknown> = {
    user_id: userIsUuid ? rawUser.toLowerCase() : uuidv5(rawUser, USER_ID_NAMESPACE),
    action_type: actionType,
    model_used: text(first(attributes, USAGE_ATTRIBUTES.model)) ?? undefined,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    // A count that is not a number is refused by validation under its own field.
    tokens_used: typeof inputTokens === "number" && typeof outputTokens === "number" ? inputTokens + outputTokens : 0,
    success: !failed,
    error_message: failed ? (span.status?.message || "span status ERROR").slice(0, 10_000) : null,
    metadata,
    route,
    event_id: `otlp:${traceId}:${spanId}`,
  };
  const createdAt = span.startTimeUnixNano == null ? undefined : isoFromUnixNanos(span.startTimeUnixNano);
  if (createdAt !== undefined) event.created_at = createdAt;
  return { kind: "usage", label, event };
}
