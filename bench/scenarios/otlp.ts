/**
 * OTLP trace ingest beside /api/v1/usage, in one run on the same data set: one client posts
 * protobuf ExportTraceServiceRequests of 512 GenAI spans (the SDK's default export batch), made by
 * the real OpenTelemetry SDK and serialized by its OTLP transformer before the clock starts, to
 * POST /api/otlp/v1/traces; and 512-event JSON batches to POST /api/v1/usage. Both routes are
 * served by the production API router over their route modules. Rounds alternate (usage, OTLP,
 * usage, OTLP) so a slow spell of the machine hits both. Everything inserted is deleted at the end
 * and the rollup queue consumed.
 */
import { randomUUID } from "node:crypto";
import { ROOT_CONTEXT } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { sql } from "kysely";
import { registerApiKey } from "../../app/lib/auth.server";
import { closeDb } from "../../app/lib/db.server";
import { runRollup } from "../../app/models/rollup.server";
import * as otlpRoute from "../../app/routes/api.otlp.v1.traces/route";
import * as usageRoute from "../../app/routes/api.v1.usage/route";
import { runInChild, serveChildJob } from "../child";
import { formatMs, summarize } from "../measure";
import { routeModuleRouter } from "../route-router";
import type { BenchContext, BenchResult, BenchScenario } from "../types";
import { serveRouters } from "./ingest";

const NAME = "otlp";
const TARGET_SPANS_PER_SECOND = 10_000;
const BATCH = 512;
const BATCHES_PER_ROUND = 40;
const ROUNDS = 2;
const USERS = 200;

type Kind = "usage" | "otlp";

interface PostJob {
  url: string;
  key: string;
  kind: Kind;
  batches: number;
  users: string[];
}

interface PostResult {
  latencies: number[];
  ms: number;
}

const CLIENT_FLAG = "TOKENBOARD_OTLP_BENCH_CLIENT";

const TYPES = ["chat_conversation", "vision_generation", "prompt_suggestions", "frequency_flip"] as const;

function usageBodies(job: PostJob): string[] {
  return Array.from({ length: job.batches }, (_, b) =>
    JSON.stringify({
      events: Array.from({ length: BATCH }, (_, i) => ({
        user_id: job.users[(b * BATCH + i) % job.users.length],
        action_type: TYPES[i % TYPES.length],
        model_used: "gpt-4o",
        tokens_used: 1_500,
        input_tokens: 1_200,
        output_tokens: 300,
        route: "/api/viva/chat",
        created_at: new Date(Date.now() - i * 1000).toISOString(),
        metadata: { bench: true },
        event_id: `bench-otlp-usage-${randomUUID()}`,
      })),
    }),
  );
}

/** ExportTraceServiceRequests as the SDK's protobuf exporter would send them. */
async function otlpBodies(job: PostJob): Promise<Uint8Array<ArrayBuffer>[]> {
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({ resource: resourceFromAttributes({ "service.name": "tokenboard-bench" }), spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
  const tracer = provider.getTracer("bench");
  const bodies: Uint8Array<ArrayBuffer>[] = [];
  for (let b = 0; b < job.batches; b++) {
    for (let i = 0; i < BATCH; i++) {
      const span = tracer.startSpan(
        "chat gpt-4o",
        {
          attributes: {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1_200,
            "gen_ai.usage.output_tokens": 300,
            "gen_ai.usage.cache_read.input_tokens": 800,
            "http.route": "/api/viva/chat",
            "enduser.id": job.users[(b * BATCH + i) % job.users.length]!,
            "tokenboard.action_type": TYPES[i % TYPES.length]!,
          },
          startTime: new Date(Date.now() - i * 1000),
        },
        ROOT_CONTEXT,
      );
      span.end();
    }
    await provider.forceFlush();
    bodies.push(ProtobufTraceSerializer.serializeRequest(memory.getFinishedSpans())!.slice());
    memory.reset();
  }
  return bodies;
}

/** In the client process: bodies built before the clock starts, then posted one after another. */
async function postHere(job: PostJob): Promise<PostResult> {
  const url = `${job.url}${job.kind === "otlp" ? "/api/otlp/v1/traces" : "/api/v1/usage"}`;
  const contentType = job.kind === "otlp" ? "application/x-protobuf" : "application/json";
  const bodies: (string | Uint8Array<ArrayBuffer>)[] = job.kind === "otlp" ? await otlpBodies(job) : usageBodies(job);
  const latencies: number[] = [];
  const started = performance.now();
  for (const body of bodies) {
    const sent = performance.now();
    const response = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${job.key}`, "content-type": contentType }, body });
    await response.arrayBuffer();
    latencies.push(performance.now() - sent);
    const stored = job.kind === "otlp" ? Number(response.headers.get("x-tokenboard-stored")) : BATCH;
    if (response.status !== 200 || stored !== BATCH) throw new Error(`${job.kind}: answered ${response.status}, stored ${stored} of ${BATCH}`);
  }
  return { latencies, ms: performance.now() - started };
}

serveChildJob(CLIENT_FLAG, postHere);

function serveBoth(): Promise<{ url: string; close: () => Promise<void> }> {
  return serveRouters([routeModuleRouter("usage", "api/v1/usage", usageRoute), routeModuleRouter("otlp", "api/otlp/v1/traces", otlpRoute)]);
}

const rate = (items: number, ms: number) => Math.round((items * 1000) / ms);

async function measureBoth(ctx: BenchContext, users: string[]): Promise<BenchResult[]> {
  const key = `bench-otlp-key-${randomUUID()}`;
  await registerApiKey(ctx.db, "bench otlp", "ingest", key);
  await closeDb();
  process.env.DATABASE_URL = ctx.url;
  const server = await serveBoth();
  try {
    const post = (kind: Kind, batches: number) => runInChild<PostJob, PostResult>(import.meta.url, CLIENT_FLAG, { url: server.url, key, kind, batches, users });
    await post("usage", 2); // warm-up: connections, plans, JIT
    await post("otlp", 2);
    const runs: Record<Kind, PostResult[]> = { usage: [], otlp: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of ["usage", "otlp"] as const) runs[kind].push(await post(kind, BATCHES_PER_ROUND));
    }
    const figures = (kind: Kind) => {
      const ms = runs[kind].reduce((sum, r) => sum + r.ms, 0);
      return { perSecond: rate(ROUNDS * BATCHES_PER_ROUND * BATCH, ms), timing: summarize(runs[kind].flatMap((r) => r.latencies)) };
    };
    const usage = figures("usage");
    const otlp = figures("otlp");
    ctx.log(`otlp: ${otlp.perSecond.toLocaleString("en-US")} spans/s, /api/v1/usage ${usage.perSecond.toLocaleString("en-US")} events/s`);
    const line = (f: ReturnType<typeof figures>, unit: string) =>
      `${f.perSecond.toLocaleString("en-US")} ${unit}/s (batch p50 ${formatMs(f.timing.p50)}, p95 ${formatMs(f.timing.p95)})`;
    return [
      {
        scenario: NAME,
        metric: `POST /api/otlp/v1/traces, protobuf, ${BATCH}-span exports, one client`,
        measured: line(otlp, "spans"),
        target: `>= ${TARGET_SPANS_PER_SECOND.toLocaleString("en-US")} spans/s`,
        pass: otlp.perSecond >= TARGET_SPANS_PER_SECOND,
      },
      { scenario: NAME, metric: `POST /api/v1/usage, JSON, ${BATCH}-event batches, one client (same run)`, measured: line(usage, "events"), target: "", pass: null },
    ];
  } finally {
    await server.close();
    await closeDb();
    await ctx.db.deleteFrom("api_keys").where("name", "=", "bench otlp").execute();
  }
}

export const otlpScenario: BenchScenario = {
  name: NAME,
  writes: true,
  run: async (ctx) => {
    // Bench-only users: what was inserted is found (and deleted) by user.
    const users = Array.from({ length: USERS }, () => randomUUID());
    try {
      return await measureBoth(ctx, users);
    } finally {
      await sql`DELETE FROM token_usage WHERE user_id = ANY(${users}::uuid[])`.execute(ctx.db);
      await runRollup(ctx.db);
    }
  },
};
