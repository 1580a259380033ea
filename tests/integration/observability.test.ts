import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import type { ServerBuild } from "@remix-run/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerApiKey } from "~/lib/auth.server";
import { configureLogging } from "~/lib/logger.server";
import * as usageRoute from "~/routes/api.v1.usage/route";
import { createApp } from "../../server/app";
import { JOBS, startJobs } from "../../server/jobs";
import { metricsAccess, routeMatcher } from "../../server/observability";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * The HTTP layer's logs and metrics, on a real express server over loopback: a request's log
 * lines share its id, which the answer echoes; /metrics counts ingest, jobs and requests by route
 * and answers loopback callers, or others with the token only.
 */
const INGEST_KEY = "observability-ingest-key-0001";
const METRICS_TOKEN = "observability-metrics-token-0001";

let t: TestDatabase;
const lines: Record<string, unknown>[] = [];
const servers: (() => Promise<void>)[] = [];

const ROUTES = {
  root: { id: "root", path: "", module: {} },
  "routes/_dashboard/layout": { id: "routes/_dashboard/layout", parentId: "root", path: undefined, module: {} },
  "routes/overview/route": { id: "routes/overview/route", parentId: "routes/_dashboard/layout", index: true, module: {} },
  "routes/user/route": { id: "routes/user/route", parentId: "routes/_dashboard/layout", path: "users/:userId", module: {} },
  "routes/reports.export/route": { id: "routes/reports.export/route", parentId: "root", path: "reports/export.csv", module: {} },
  "routes/api.v1.usage/route": { id: "routes/api.v1.usage/route", parentId: "root", path: "api/v1/usage", module: usageRoute },
} as unknown as ServerBuild["routes"];

async function serve(metricsToken?: string): Promise<string> {
  const app = createApp({ mode: "production", build: { routes: ROUTES } as ServerBuild, metricsToken });
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  servers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let base = "";

beforeAll(async () => {
  process.env.TOKENBOARD_LOG_LEVEL = "debug";
  configureLogging(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    }),
  );
  t = await createTestDatabase();
  await registerApiKey(t.db, "ingest", "ingest", INGEST_KEY);
  base = await serve();
});
afterAll(async () => {
  for (const close of servers) await close();
  await t.drop();
});

function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user_id: randomUUID(),
    action_type: "chat_conversation",
    model_used: "gpt-4o",
    tokens_used: 3_000,
    input_tokens: 2_000,
    output_tokens: 1_000,
    created_at: "2025-03-01T10:00:00Z",
    event_id: randomUUID(),
    ...overrides,
  };
}

function ingest(events: unknown[], headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/api/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${INGEST_KEY}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ events }),
  });
}

/** The value of one sample line of the exposition, e.g. `name{label="x"}`. */
function sample(exposition: string, series: string): number | undefined {
  const line = exposition.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("request ids in logs and answers", () => {
  it("binds the client's X-Request-Id to every log line of the request and echoes it", async () => {
    const id = `obs-${randomUUID()}`;
    const response = await ingest([event(), event()], { "x-request-id": id });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe(id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const own = lines.filter((l) => l.reqId === id);
    expect(own.map((l) => l.msg)).toEqual(expect.arrayContaining(["usage batch stored", "request completed"]));
    // The route's own line came from `logger`, which knew nothing of the request but its scope.
    const stored = lines.find((l) => l.msg === "usage batch stored" && l.reqId === id);
    expect(stored).toMatchObject({ accepted: 2, duplicates: 0, level: "debug" });
    const completed = own.find((l) => l.msg === "request completed");
    expect(completed).toMatchObject({ route: "routes/api.v1.usage/route", res: { statusCode: 200 }, req: { method: "POST", path: "/api/v1/usage" } });
    // Never the bearer key.
    expect(JSON.stringify(own)).not.toContain(INGEST_KEY);
  });

  it("gives a request without a usable id a fresh one, different for each request", async () => {
    const first = await ingest([event()], { "x-request-id": "not an id <script>" });
    const second = await ingest([event()]);
    const ids = [first.headers.get("x-request-id"), second.headers.get("x-request-id")];
    for (const id of ids) expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(ids[0]).not.toBe(ids[1]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lines.filter((l) => l.reqId === ids[0] && l.msg === "usage batch stored")).toHaveLength(1);
  });

  it("never logs the token of a password reset link", async () => {
    const token = `reset${"Z".repeat(38)}`;
    const id = `obs-${randomUUID()}`;
    await fetch(`${base}/reset/${token}`, { headers: { "x-request-id": id } });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // This test's build renders no page: the answer is an error, logged with the request all the same.
    const own = lines.filter((l) => l.reqId === id && l.req);
    expect(own.map((l) => l.req)).toEqual([expect.objectContaining({ path: "/reset/:token" })]);
    expect(JSON.stringify(lines)).not.toContain(token);
  });

  it("echoes the id on refusals too", async () => {
    const response = await fetch(`${base}/api/v1/usage`, { method: "POST", headers: { "x-request-id": "refused-0001" }, body: "{}" });
    expect(response.status).toBe(401);
    expect(response.headers.get("x-request-id")).toBe("refused-0001");
  });
});

describe("/metrics", () => {
  it("counts ingest outcomes, batch durations, queue depth, jobs and requests by route", async () => {
    // Counters are the process's: earlier tests' requests are in them.
    const start = await (await fetch(`${base}/metrics`)).text();
    const grown = (now: string, series: string) => (sample(now, series) ?? 0) - (sample(start, series) ?? 0);
    const queued = sample(start, "tokenboard_rollup_queue_depth") ?? 0;
    const duplicate = event();
    expect((await ingest([duplicate, duplicate, event()])).status).toBe(200);
    expect((await ingest([event(), event(), event(), event()])).status).toBe(200);
    expect((await ingest([event({ tokens_used: -1 }), event()])).status).toBe(422);
    const before = await (await fetch(`${base}/metrics`)).text();
    expect(grown(before, 'tokenboard_ingest_events_total{outcome="accepted"}')).toBe(6);
    expect(grown(before, 'tokenboard_ingest_events_total{outcome="duplicate"}')).toBe(1);
    expect(grown(before, 'tokenboard_ingest_events_total{outcome="rejected"}')).toBe(2);
    expect(grown(before, 'tokenboard_ingest_batch_duration_seconds_count{status="200"}')).toBe(2);
    expect(grown(before, 'tokenboard_ingest_batch_duration_seconds_count{status="422"}')).toBe(1);
    expect(sample(before, "tokenboard_rollup_queue_depth")).toBe(queued + 6);
    expect(grown(before, 'tokenboard_http_request_duration_seconds_count{route="routes/api.v1.usage/route",method="POST",status="200"}')).toBe(2);
    expect(before).toContain("process_cpu_seconds_total");
    expect(before).toContain("nodejs_eventloop_lag_seconds");

    const failing = { name: "always-fails", intervalMs: 60_000, run: () => Promise.reject(new Error("planned failure")) };
    const jobs = startJobs(t.url, () => undefined, [...JOBS.filter((job) => job.name === "usage-rollup"), failing]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await jobs.stop();

    const after = await (await fetch(`${base}/metrics`)).text();
    expect(sample(after, 'tokenboard_job_duration_seconds_count{job="usage-rollup",outcome="ok"}')).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'tokenboard_job_duration_seconds_count{job="always-fails",outcome="failed"}')).toBe(1);
    expect(sample(after, 'tokenboard_job_failures_total{job="always-fails"}')).toBe(1);
    expect(sample(after, "tokenboard_rollup_queue_depth")).toBe(0);
    expect(sample(after, 'tokenboard_http_request_duration_seconds_count{route="metrics",method="GET",status="200"}')).toBeGreaterThanOrEqual(1);
  });

  it("refuses a caller that is not loopback, and one that came through a proxy, without the token", async () => {
    expect(metricsAccess({ headers: {}, socket: { remoteAddress: "203.0.113.7" } }, undefined)).toBe("refused");
    expect(metricsAccess({ headers: {}, socket: { remoteAddress: "::ffff:127.0.0.1" } }, undefined)).toBe("allowed");
    const proxied = await fetch(`${base}/metrics`, { headers: { "x-forwarded-for": "203.0.113.7" } });
    expect(proxied.status).toBe(403);
    expect(await proxied.text()).not.toContain("tokenboard_");
  });

  it("with TOKENBOARD_METRICS_TOKEN set, answers others that send it and asks the rest for it", async () => {
    expect(metricsAccess({ headers: { authorization: `Bearer ${METRICS_TOKEN}` }, socket: { remoteAddress: "203.0.113.7" } }, METRICS_TOKEN)).toBe("allowed");
    expect(metricsAccess({ headers: { authorization: "Bearer wrong" }, socket: { remoteAddress: "203.0.113.7" } }, METRICS_TOKEN)).toBe("no-token");
    const withToken = await serve(METRICS_TOKEN);
    const proxied = { "x-forwarded-for": "203.0.113.7" };
    const refused = await fetch(`${withToken}/metrics`, { headers: proxied });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("www-authenticate")).toContain("Bearer");
    const allowed = await fetch(`${withToken}/metrics`, { headers: { ...proxied, authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get("content-type")).toContain("text/plain");
    expect(await allowed.text()).toContain("tokenboard_ingest_events_total");
  });
});

describe("route ids", () => {
  it("names a request by its route's pattern, never by the URL's values", () => {
    const routeOf = routeMatcher(ROUTES);
    expect(routeOf("/")).toBe("routes/overview/route");
    expect(routeOf("/users/3f1c0000-0000-4000-8000-000000000001")).toBe("routes/user/route");
    expect(routeOf("/users/42.data")).toBe("routes/user/route");
    expect(routeOf("/reports/export.csv")).toBe("routes/reports.export/route");
    expect(routeOf("/api/v1/usage")).toBe("routes/api.v1.usage/route");
    expect(routeOf("/assets/app-123.js")).toBe("static");
    expect(routeOf("/wp-login.php")).toBe("unmatched");
  });
});
