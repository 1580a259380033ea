/**
 * Usage ingest throughput on the data set's indexes and rollup trigger:
 * - POST /api/v1/usage over loopback HTTP with the typed client, 1000-event batches, one client
 *   at a time and two at once (the machine has two cores), served by the production API router
 *   (server/app.ts) over the route module: HTTP, JSON, auth, validation and the insert. The
 *   clients run in a process of their own (bench/child.ts), their batches built beforehand.
 * - `cli import-usage` on a 100,000-line CSV file.
 * Everything inserted is deleted at the end and the rollup queue (the rows and their reversal)
 * is consumed, so the data set is as it was for the next scenario and the next run.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import express from "express";
import { sql } from "kysely";
import { ACTION_TYPES } from "../../app/domain/action-types";
import { registerApiKey } from "../../app/lib/auth.server";
import { closeDb } from "../../app/lib/db.server";
import { runRollup } from "../../app/models/rollup.server";
import { importUsageCsv } from "../../app/models/usage-import.server";
import * as usageRoute from "../../app/routes/api.v1.usage/route";
import { createTokenboardClient, newEventId, type TokenUsageEvent } from "../../client/track-token-usage";
import { runInChild, serveChildJob } from "../child";
import { formatMs, summarize } from "../measure";
import { routeModuleRouter } from "../route-router";
import type { BenchContext, BenchResult, BenchScenario } from "../types";

const NAME = "ingest";
const TARGET_EVENTS_PER_SECOND = 20_000;
const BATCH = 1000;
/**
 * Batches one client posts in turn, then split between two: ~5 s and ~3 s here. Until
 * 2026-11-30 it was 30 (~1.5 s and ~1 s), and the two-client figure moved 18,430–22,568 events/s
 * between runs of the same code.
 */
const SEQUENTIAL_BATCHES = 100;
const PARALLEL_CLIENTS = 2;
const CSV_LINES = 100_000;
const EVENT_PREFIX = "bench-ingest-";
const aiTypes = ACTION_TYPES.filter((t) => t.category === "ai");

/**
 * Event number `i`: an AI type in turn, tokens inside its range, stamped within the last
 * `stampedWithinSeconds` (a day unless given: a backfill's spread); a new user unless `userId` is given.
 */
export function benchEvent(i: number, prefix = EVENT_PREFIX, userId: string = randomUUID(), stampedWithinSeconds = 86_400): TokenUsageEvent {
  const type = aiTypes[i % aiTypes.length]!;
  const range = type.expectedRange ?? { min: 100, max: 1000 };
  return {
    user_id: userId,
    action_type: type.name as TokenUsageEvent["action_type"],
    model_used: "gpt-4o",
    tokens_used: range.min + (i % (range.max - range.min + 1)),
    input_tokens: 1000,
    output_tokens: 500,
    route: type.routes[0] ?? null,
    created_at: new Date(Date.now() - (i % stampedWithinSeconds) * 1000).toISOString(),
    metadata: { bench: true, i },
    event_id: `${prefix}${newEventId()}`,
  };
}

/** The ingest route's action through the production API router, on a loopback port of its own. */
export function serveIngestRoute(): Promise<{ url: string; close: () => Promise<void> }> {
  return serveRouters([routeModuleRouter("usage", "api/v1/usage", usageRoute)]);
}

/** API route routers (bench/route-router.ts) on a loopback port of their own. */
export async function serveRouters(routers: express.RequestHandler[]): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  for (const router of routers) app.use(router);
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What the client process is sent: `clients` typed clients, each posting `batches` batches one after another. */
interface PostJob {
  url: string;
  key: string;
  clients: number;
  batches: number;
  /** First event number (event numbers pick action types and token counts). */
  offset: number;
}

interface PostResult {
  /** Each batch's round trip, ms. */
  latencies: number[];
  ms: number;
  cpuSeconds: number;
}

/** Set in the forked client process's environment. */
const CLIENT_FLAG = "TOKENBOARD_INGEST_BENCH_CLIENT";

/** In the client process: the batches are built before the clock starts, then posted. */
async function postHere(job: PostJob): Promise<PostResult> {
  const client = createTokenboardClient({ baseUrl: job.url, ingestKey: job.key, retries: 0 });
  const perClient = Array.from({ length: job.clients }, (_, c) => batchesOf(job.batches, job.offset + c * job.batches * BATCH));
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    perClient.map(async (batches) => {
      for (const batch of batches) {
        const sent = performance.now();
        const result = await client.trackTokenUsage(batch);
        latencies.push(performance.now() - sent);
        if (result.accepted !== batch.length) throw new Error(`expected ${batch.length} accepted, got ${result.accepted}`);
      }
    }),
  );
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { latencies, ms, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

serveChildJob(CLIENT_FLAG, postHere);

function batchesOf(count: number, offset: number): TokenUsageEvent[][] {
  return Array.from({ length: count }, (_, b) => Array.from({ length: BATCH }, (_, i) => benchEvent(offset + b * BATCH + i)));
}

const rate = (events: number, ms: number) => Math.round((events * 1000) / ms);

async function measureApi(ctx: BenchContext): Promise<BenchResult[]> {
  const key = `bench-ingest-key-${randomUUID()}`;
  await registerApiKey(ctx.db, "bench ingest", "ingest", key);
  // The route reads the app's database handle; point it at this data set.
  await closeDb();
  process.env.DATABASE_URL = ctx.url;
  const server = await serveIngestRoute();
  try {
    const post = (clients: number, batches: number, offset: number) =>
      runInChild<PostJob, PostResult>(import.meta.url, CLIENT_FLAG, { url: server.url, key, clients, batches, offset });
    await post(1, 3, 0); // warm-up: connections, plans, JIT
    const sequential = await post(1, SEQUENTIAL_BATCHES, 10_000);
    const perClient = Math.ceil(SEQUENTIAL_BATCHES / PARALLEL_CLIENTS);
    const parallel = await post(PARALLEL_CLIENTS, perClient, 100_000);
    const timing = summarize(sequential.latencies);
    const sequentialRate = rate(SEQUENTIAL_BATCHES * BATCH, sequential.ms);
    const parallelRate = rate(PARALLEL_CLIENTS * perClient * BATCH, parallel.ms);
    ctx.log(`ingest: ${sequentialRate.toLocaleString("en-US")} events/s with one client, ${parallelRate.toLocaleString("en-US")} with ${PARALLEL_CLIENTS}`);
    return [
      {
        scenario: NAME,
        metric: `POST /api/v1/usage, 1000-event batches, one client (${SEQUENTIAL_BATCHES} batches)`,
        measured: `${sequentialRate.toLocaleString("en-US")} events/s (batch p50 ${formatMs(timing.p50)}, p95 ${formatMs(timing.p95)})`,
        target: `>= ${TARGET_EVENTS_PER_SECOND.toLocaleString("en-US")} events/s`,
        pass: sequentialRate >= TARGET_EVENTS_PER_SECOND,
      },
      {
        scenario: NAME,
        metric: `POST /api/v1/usage, 1000-event batches, ${PARALLEL_CLIENTS} clients at once`,
        measured: `${parallelRate.toLocaleString("en-US")} events/s`,
        target: `>= ${TARGET_EVENTS_PER_SECOND.toLocaleString("en-US")} events/s`,
        pass: parallelRate >= TARGET_EVENTS_PER_SECOND,
      },
    ];
  } finally {
    await server.close();
    await closeDb();
    await ctx.db.deleteFrom("api_keys").where("name", "=", "bench ingest").execute();
  }
}

async function measureCsvImport(ctx: BenchContext): Promise<BenchResult> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tb-bench-")), "usage.csv");
  const header = "user_id,action_type,model_used,tokens_used,input_tokens,output_tokens,route,created_at,event_id";
  const lines = Array.from({ length: CSV_LINES }, (_, i) => {
    const e = benchEvent(i);
    return [e.user_id, e.action_type, e.model_used, e.tokens_used, e.input_tokens, e.output_tokens, e.route, e.created_at, e.event_id].join(",");
  });
  fs.writeFileSync(file, `${header}\n${lines.join("\n")}\n`);
  try {
    const report = await importUsageCsv(ctx.pool, fs.createReadStream(file), { actor: { id: null, label: "bench" }, source: "bench" });
    if (report.loaded !== CSV_LINES) throw new Error(`import loaded ${report.loaded} of ${CSV_LINES} lines`);
    return {
      scenario: NAME,
      metric: "cli import-usage, 100,000-line CSV (parse, validate, COPY, insert)",
      measured: `${formatMs(report.elapsedMs)} (${rate(CSV_LINES, report.elapsedMs).toLocaleString("en-US")} rows/s)`,
      target: "",
      pass: null,
    };
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

export const ingestScenario: BenchScenario = {
  name: NAME,
  writes: true,
  run: async (ctx) => {
    try {
      return [...(await measureApi(ctx)), await measureCsvImport(ctx)];
    } finally {
      await sql`DELETE FROM token_usage WHERE event_id LIKE ${`${EVENT_PREFIX}%`}`.execute(ctx.db);
      // Else the scenarios after this one read ~200,000 queued rows as every exact page's tail.
      await runRollup(ctx.db);
    }
  },
};
