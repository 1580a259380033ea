/**
 * Prometheus metrics (prom-client), served at /metrics by server/observability.ts. Label values
 * are bounded: outcomes, job names, route ids (the route's file, never the raw URL), statuses.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { getDb } from "./db.server";
import { logger } from "./logger.server";
import { rollupQueueDepth } from "~/models/rollup.server";

export interface Metrics {
  registry: Registry;
  ingestEvents: Counter<"outcome">;
  ingestBatchSeconds: Histogram<"status">;
  jobSeconds: Histogram<"job" | "outcome">;
  jobFailures: Counter<"job">;
  httpSeconds: Histogram<"route" | "method" | "status">;
  alertDeliveries: Counter<"channel" | "outcome">;
  alertLatencySeconds: Histogram<"channel">;
}

declare global {
  // One registry per process: the server and the Remix build each hold a copy of this module.
  var __tokenboardMetrics: Metrics | undefined;
}

function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: "tokenboard_rollup_queue_depth",
    help: "Usage rows waiting for the rollup job (read from the queue's id range at each scrape)",
    registers,
    async collect() {
      try {
        this.set(await rollupQueueDepth(getDb()));
      } catch (error) {
        // A scrape while the database is down still answers the process metrics.
        logger.warn({ err: error }, "rollup queue depth not read");
      }
    },
  });
  return {
    registry,
    ingestEvents: new Counter({ name: "tokenboard_ingest_events_total", help: "Usage events received by POST /api/v1/usage, by outcome", labelNames: ["outcome"], registers }),
    ingestBatchSeconds: new Histogram({
      name: "tokenboard_ingest_batch_duration_seconds",
      help: "Time to answer one POST /api/v1/usage batch, by HTTP status",
      labelNames: ["status"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    jobSeconds: new Histogram({
      name: "tokenboard_job_duration_seconds",
      help: "Background job runs, by job and outcome (ok, failed)",
      labelNames: ["job", "outcome"],
      buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    }),
    jobFailures: new Counter({ name: "tokenboard_job_failures_total", help: "Background job runs that failed, by job", labelNames: ["job"], registers }),
    httpSeconds: new Histogram({
      name: "tokenboard_http_request_duration_seconds",
      help: "HTTP requests, by route id (the route module, not the URL), method and status",
      labelNames: ["route", "method", "status"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    alertDeliveries: new Counter({ name: "tokenboard_alert_deliveries_total", help: "Alert delivery attempts, by channel kind and outcome (sent, failed, dead)", labelNames: ["channel", "outcome"], registers }),
    alertLatencySeconds: new Histogram({
      name: "tokenboard_alert_delivery_latency_seconds",
      help: "From an alert being queued to its successful delivery, by channel kind",
      labelNames: ["channel"],
      buckets: [1, 5, 10, 20, 30, 60, 120, 600, 3600, 86400],
      registers,
    }),
  };
}

export function metrics(): Metrics {
  globalThis.__tokenboardMetrics ??= createMetrics();
  return globalThis.__tokenboardMetrics;
}
