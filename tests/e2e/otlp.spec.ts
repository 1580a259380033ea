import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { OTLPTraceExporter as JsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as ProtoTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { INGEST_KEY, withE2eDatabase } from "./support";

/**
 * The OpenTelemetry SDK with its OTLP exporters, configured as an app would (endpoint, bearer
 * header, batch processor), against the built server: GenAI spans land in token_usage.
 */
for (const encoding of ["protobuf", "json"] as const) {
  test(`an app's OpenTelemetry ${encoding} exporter stores its GenAI spans as usage`, async ({ baseURL }) => {
    const config = { url: `${baseURL}/api/otlp/v1/traces`, headers: { Authorization: `Bearer ${INGEST_KEY}` } };
    const exporter = encoding === "protobuf" ? new ProtoTraceExporter(config) : new JsonTraceExporter(config);
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ "service.name": "e2e-next-app" }),
      spanProcessors: [new BatchSpanProcessor({ exporter })],
    });
    const tracer = provider.getTracer("e2e");
    const user = randomUUID();
    const server = tracer.startSpan("POST /api/viva/chat", { attributes: { "http.route": "/api/viva/chat", "enduser.id": user } });
    tracer
      .startSpan(
        "ai.streamText.doStream",
        { attributes: { "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 100 } },
        trace.setSpan(ROOT_CONTEXT, server),
      )
      .end();
    server.end();
    await provider.forceFlush();
    await provider.shutdown();

    const rows = await withE2eDatabase(async (client) => {
      const result = await client.query<{ action_type: string; tokens_used: number; route: string }>(
        "SELECT action_type, tokens_used, route FROM token_usage WHERE user_id = $1",
        [user],
      );
      return result.rows;
    });
    expect(rows).toEqual([{ action_type: "chat_conversation", tokens_used: 1_000, route: "/api/viva/chat" }]);
  });
}
