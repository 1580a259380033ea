/**
 * OTLP/HTTP trace ingest end to end: spans made by the real OpenTelemetry SDK, sent by its real
 * OTLP exporters (protobuf and JSON) to the API router on a loopback server, stored as token_usage.
 */
import { gzipSync } from "node:zlib";
import type { AddressInfo } from "node:net";
import type { ServerBuild } from "@remix-run/node";
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Span } from "@opentelemetry/api";
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import express from "express";
import { v5 as uuidv5 } from "uuid";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { USER_ID_NAMESPACE } from "~/features/otlp/rules";
import { registerApiKey } from "~/lib/auth.server";
import * as otlpRoute from "~/routes/api.otlp.v1.traces/route";
import { apiRouter } from "../../server/app";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

const INGEST_KEY = "otlp-ingest-key-0123456789";
const LEDGER_KEY = "otlp-ledger-key-0123456789";
const USER = "0b6f7a52-6d1e-4c63-9d8e-2f7b9d3c1a10";
const START = new Date("2026-03-02T09:15:30.123Z");

let t: TestDatabase;
let base = "";
let close: () => Promise<void>;

interface Exchange {
  status: number;
  requestHeaders: Record<string, string | string[] | undefined>;
  responseHeaders: Record<string, string>;
  body: Buffer;
}
/** What the server answered each export, as the exporter received it. */
let exchanges: Exchange[] = [];

const ROUTES = {
  "routes/api.otlp.v1.traces/route": { id: "routes/api.otlp.v1.traces/route", path: "api/otlp/v1/traces", module: otlpRoute },
} as unknown as ServerBuild["routes"];

beforeAll(async () => {
  t = await createTestDatabase();
  await registerApiKey(t.db, "otlp ingest", "ingest", INGEST_KEY);
  await registerApiKey(t.db, "otlp ledger", "ledger", LEDGER_KEY);
  const app = express();
  app.use((req, res, next) => {
    const writeHead = res.writeHead.bind(res);
    const end = res.end.bind(res);
    let status = 0;
    let headers: Record<string, string> = {};
    res.writeHead = ((code: number, raw: string[]) => {
      status = code;
      headers = {};
      for (let i = 0; i + 1 < raw.length; i += 2) headers[String(raw[i]).toLowerCase()] = String(raw[i + 1]);
      return writeHead(code, raw);
    }) as typeof res.writeHead;
    res.end = ((chunk: string | Buffer) => {
      exchanges.push({ status, requestHeaders: { ...req.headers }, responseHeaders: headers, body: Buffer.from(chunk ?? "") });
      return end(chunk);
    }) as typeof res.end;
    next();
  });
  app.use(apiRouter({ routes: ROUTES }));
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await close();
  await t.drop();
});
beforeEach(() => {
  exchanges = [];
});

type Encoding = "protobuf" | "json";

/** Spans as the SDK finishes them: `build` starts and ends them with a tracer. */
async function recordSpans(build: (start: (name: string, attributes: Attributes, parent?: Span) => Span) => void): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": "otlp-test-app" }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
  });
  const tracer = provider.getTracer("otlp-ingest-test");
  build((name, attributes, parent) =>
    tracer.startSpan(name, { attributes, startTime: START }, parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT),
  );
  await provider.forceFlush();
  return memory.getFinishedSpans();
}

/** One export by the real exporter; answers its result code (0 success, 1 failed). */
async function exportWith(encoding: Encoding, spans: ReadableSpan[], options: { key?: string; gzip?: boolean } = {}): Promise<number> {
  const config = {
    url: `${base}/api/otlp/v1/traces`,
    headers: { Authorization: `Bearer ${options.key ?? INGEST_KEY}` },
    compression: (options.gzip ? "gzip" : "none") as never,
  };
  const exporter = encoding === "protobuf" ? new ProtoTraceExporter(config) : new JsonTraceExporter(config);
  const code = await new Promise<number>((resolve) => exporter.export(spans, (result) => resolve(result.code)));
  await exporter.shutdown();
  return code;
}

/** The ExportTraceServiceResponse of the last export, decoded as the exporter's own library does. */
function lastResponse(encoding: Encoding): { partialSuccess?: { rejectedSpans?: number | string; errorMessage?: string } } {
  const body = exchanges.at(-1)?.body ?? Buffer.alloc(0);
  return encoding === "protobuf" ? ProtobufTraceSerializer.deserializeResponse(body) : JSON.parse(body.toString("utf8"));
}

const GEN_AI_CHAT: Attributes = {
  "gen_ai.operation.name": "chat",
  "gen_ai.request.model": "gpt-4o",
  "gen_ai.response.model": "gpt-4o-2024-08-06",
  "gen_ai.usage.input_tokens": 1_200,
  "gen_ai.usage.output_tokens": 300,
  "gen_ai.usage.cache_read.input_tokens": 1_000,
  "gen_ai.usage.reasoning.output_tokens": 40,
};

/** A server span on the chat route, a GenAI chat span and a database span under it. */
function chatTrace(extra: Attributes = {}): Promise<ReadableSpan[]> {
  return recordSpans((start) => {
    const server = start("POST /api/viva/chat", { "http.route": "/api/viva/chat", "enduser.id": USER });
    start("chat gpt-4o", { ...GEN_AI_CHAT, ...extra }, server).end();
    start("SELECT profiles", { "db.system.name": "postgresql" }, server).end();
    server.end();
  });
}

async function rowsFor(spans: ReadableSpan[]) {
  const ids = spans.map((span) => `otlp:${span.spanContext().traceId}:${span.spanContext().spanId}`);
  return t.db.selectFrom("token_usage").selectAll().where("event_id", "in", ids).orderBy("event_id").execute();
}

describe.each(["protobuf", "json"] as const)("OTLP/HTTP %s export", (encoding) => {
  it("stores a GenAI span as a token_usage row and skips the spans without usage", async () => {
    const spans = await chatTrace();
    expect(await exportWith(encoding, spans)).toBe(0);
    const rows = await rowsFor(spans);
    const chat = spans.find((span) => span.name === "chat gpt-4o")!;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      user_id: USER,
      action_type: "chat_conversation",
      model_used: "gpt-4o-2024-08-06",
      tokens_used: 1_500,
      input_tokens: 1_200,
      output_tokens: 300,
      route: "/api/viva/chat",
      success: true,
      error_message: null,
      event_id: `otlp:${chat.spanContext().traceId}:${chat.spanContext().spanId}`,
    });
    expect(new Date(rows[0]!.created_at).toISOString()).toBe(START.toISOString());
    expect(rows[0]!.metadata).toMatchObject({
      source: "otlp",
      span_name: "chat gpt-4o",
      operation: "chat",
      service_name: "otlp-test-app",
      cache_read_input_tokens: 1_000,
      reasoning_output_tokens: 40,
    });
    const answer = exchanges.at(-1)!;
    expect(answer.status).toBe(200);
    expect(answer.responseHeaders["content-type"]).toContain(encoding === "protobuf" ? "application/x-protobuf" : "application/json");
    expect(answer.responseHeaders).toMatchObject({ "x-tokenboard-stored": "1", "x-tokenboard-skipped": "2", "x-tokenboard-rejected": "0" });
    expect(lastResponse(encoding).partialSuccess).toBeUndefined();
  });

  it("stores nothing new when the same spans are sent again", async () => {
    const spans = await chatTrace();
    expect(await exportWith(encoding, spans)).toBe(0);
    expect(await exportWith(encoding, spans)).toBe(0);
    expect(await rowsFor(spans)).toHaveLength(1);
    expect(exchanges.at(-1)!.responseHeaders).toMatchObject({ "x-tokenboard-stored": "0", "x-tokenboard-duplicates": "1" });
  });

  it("accepts a gzip-compressed export", async () => {
    const spans = await chatTrace();
    expect(await exportWith(encoding, spans, { gzip: true })).toBe(0);
    expect(exchanges.at(-1)!.requestHeaders["content-encoding"]).toBe("gzip");
    expect(await rowsFor(spans)).toHaveLength(1);
  });

  it("answers partial success naming the rejected spans and stores the others", async () => {
    const spans = await recordSpans((start) => {
      start("chat ok", { ...GEN_AI_CHAT, "enduser.id": USER }).end();
      start("embeddings", { "gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 12, "enduser.id": USER }).end();
      start("legacy", { ...GEN_AI_CHAT, "tokenboard.action_type": "vibrational_analysis", "enduser.id": USER }).end();
      start("no user", { ...GEN_AI_CHAT }).end();
    });
    expect(await exportWith(encoding, spans)).toBe(0);
    const partial = lastResponse(encoding).partialSuccess;
    expect(Number(partial?.rejectedSpans)).toBe(3);
    expect(partial?.errorMessage).toContain('span "embeddings"');
    expect(partial?.errorMessage).toContain("no action type");
    expect(partial?.errorMessage).toContain('unknown action type "vibrational_analysis"');
    expect(partial?.errorMessage).toContain('span "no user"');
    expect(partial?.errorMessage).toContain("user_id: is required");
    const rows = await rowsFor(spans);
    expect(rows.map((row) => (row.metadata as { span_name: string }).span_name)).toEqual(["chat ok"]);
    expect(exchanges.at(-1)!.responseHeaders).toMatchObject({ "x-tokenboard-stored": "1", "x-tokenboard-rejected": "3" });
  });

  it("refuses a wrong key (401) and a key of another scope (403), storing nothing", async () => {
    const spans = await chatTrace();
    expect(await exportWith(encoding, spans, { key: "not-a-key-0000000000" })).toBe(1);
    expect(exchanges.at(-1)!.status).toBe(401);
    expect(exchanges.at(-1)!.responseHeaders["www-authenticate"]).toBe("Bearer");
    expect(await exportWith(encoding, spans, { key: LEDGER_KEY })).toBe(1);
    expect(exchanges.at(-1)!.status).toBe(403);
    expect(await rowsFor(spans)).toHaveLength(0);
  });
});

describe("OTLP span attributes", () => {
  it("maps a span without an action type through the registry (span name, gen_ai.operation.name, http.route)", async () => {
    const spans = await recordSpans((start) => {
      // The Vercel AI SDK's streamText provider call: mapped by span name.
      start("ai.streamText.doStream", { "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5, "enduser.id": USER }).end();
      // A route with one AI type in the registry's route table.
      const server = start("POST /api/vision/generate", { "http.route": "/api/vision/generate" });
      start("chat", { ...GEN_AI_CHAT, "enduser.id": USER }, server).end();
      server.end();
    });
    expect(await exportWith("protobuf", spans)).toBe(0);
    const rows = await rowsFor(spans);
    const byName = Object.fromEntries(rows.map((row) => [(row.metadata as { span_name: string }).span_name, row]));
    expect(byName["ai.streamText.doStream"]).toMatchObject({ action_type: "chat_conversation", route: null, tokens_used: 15 });
    expect(byName["chat"]).toMatchObject({ action_type: "vision_generation", route: "/api/vision/generate" });
  });

  it("takes the action type and user from the Vercel AI SDK's telemetry metadata, a non-UUID user as its UUIDv5", async () => {
    const spans = await recordSpans((start) => {
      start("ai.generateText.doGenerate", {
        "gen_ai.request.model": "claude-sonnet-4",
        "gen_ai.usage.input_tokens": 700,
        "gen_ai.usage.output_tokens": 70,
        "ai.usage.cachedInputTokens": 500,
        "ai.telemetry.functionId": "summarise-category",
        "ai.telemetry.metadata.tokenboard.action_type": "life_vision_category_summary",
        "ai.telemetry.metadata.userId": "user_2abcDEF",
      }).end();
    });
    expect(await exportWith("json", spans)).toBe(0);
    const [row] = await rowsFor(spans);
    expect(row).toMatchObject({ action_type: "life_vision_category_summary", user_id: uuidv5("user_2abcDEF", USER_ID_NAMESPACE), tokens_used: 770 });
    expect(row!.metadata).toMatchObject({ otel_user_id: "user_2abcDEF", cache_read_input_tokens: 500, function_id: "summarise-category" });
  });

  it("stores a span whose status is ERROR as a failed call with its message", async () => {
    const spans = await recordSpans((start) => {
      const span = start("chat", { ...GEN_AI_CHAT, "enduser.id": USER });
      span.setStatus({ code: SpanStatusCode.ERROR, message: "rate limited by provider" });
      span.end();
    });
    expect(await exportWith("protobuf", spans)).toBe(0);
    expect(await rowsFor(spans)).toMatchObject([{ success: false, error_message: "rate limited by provider" }]);
  });
});

describe("OTLP/HTTP answers", () => {
  const url = () => `${base}/api/otlp/v1/traces`;
  const auth = { authorization: `Bearer ${INGEST_KEY}` };

  it("answers 400 with a Status for a body that does not decode", async () => {
    const proto = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/x-protobuf" }, body: Buffer.from("this is not protobuf") });
    expect(proto.status).toBe(400);
    const json = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: "{not json" });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ code: 3, message: "body is not valid JSON" });
    const shape = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: '{"resourceSpans":[{"scopeSpans":"x"}]}' });
    expect(shape.status).toBe(400);
    expect(((await shape.json()) as { message: string }).message).toMatch(/^resourceSpans\.0\.scopeSpans: /);
    const gzip = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/json", "content-encoding": "gzip" }, body: "plain" });
    expect(gzip.status).toBe(400);
  });

  it("answers 415 for another content type or encoding, 405 for GET", async () => {
    const text = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "text/plain" }, body: "x" });
    expect(text.status).toBe(415);
    const brotli = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/json", "content-encoding": "br" }, body: "{}" });
    expect(brotli.status).toBe(415);
    expect((await fetch(url())).status).toBe(405);
  });

  it("answers 413 for a gzip body that inflates past the limit", async () => {
    const bomb = gzipSync(Buffer.alloc(otlpRoute.MAX_INFLATED_BYTES + 1, 0x20));
    const response = await fetch(url(), { method: "POST", headers: { ...auth, "content-type": "application/json", "content-encoding": "gzip" }, body: bomb });
    expect(response.status).toBe(413);
  });
});
