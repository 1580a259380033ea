/**
 * `npm start`: the embedded database (unless DATABASE_URL is set), migrations, bootstrap
 * accounts and API keys, demo data on first run, background jobs, then the HTTP server.
 */
import fs from "node:fs";
import path from "node:path";
import type { Server } from "node:http";
import type { ServerBuild } from "@remix-run/node";
import { createDb } from "../db/database";
import { startEmbedded, type EmbeddedDatabase } from "../db/embedded";
import { prepareDatabase } from "../db/setup";
import { adoptBillingOnce, describeAdoption } from "../app/models/billing-adoption.server";
import { getEnv } from "../app/lib/env.server";
import { configureLogging, logger } from "../app/lib/logger.server";
import { registerApiKey } from "../app/lib/auth.server";
import { ensureAdmin } from "../app/models/staff.server";
import { ensureDemoAccounts, loadDemoDataOnce } from "../db/seed/demo-mode";
import { startJobs, type JobRunner } from "./jobs";
import { createApp } from "./app";

const dev = process.argv.includes("--dev");
const log = (line: string, level: "info" | "error" = "info") => logger[level](line);

async function main() {
  const env = getEnv();
  // Development may read as text; production stays JSON lines (pino-pretty is a dev dependency).
  if (dev) configureLogging((await import("pino-pretty")).default({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid" }));
  let embedded: EmbeddedDatabase | undefined;
  const demo = env.DATABASE_URL === undefined;
  if (demo) {
    const started = Date.now();
    embedded = await startEmbedded({ dataDir: path.join(env.TOKENBOARD_DATA_DIR, "pg"), notice: log });
    process.env.DATABASE_URL = embedded.url("tokenboard");
    log(`embedded PostgreSQL ${embedded.created ? "created" : "reused"} in ${env.TOKENBOARD_DATA_DIR}/pg on port ${embedded.port} (${Date.now() - started} ms)`);
  } else {
    log("using DATABASE_URL (no demo data)");
  }

  const { db } = createDb(process.env.DATABASE_URL as string, 4);
  // Filled in as start-up proceeds; shutdown stops whatever has started.
  const running: { jobs?: JobRunner; server?: Server } = {};
  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log(`${signal}: stopping`);
    await running.jobs?.stop();
    const server = running.server;
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeAllConnections?.();
    await db.destroy().catch(() => undefined);
    const { closeDb } = await import("../app/lib/db.server");
    await closeDb().catch(() => undefined);
    await embedded?.stop();
    log("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));

  // In demo mode the demo's billing history is adopted once it is loaded (below), not before.
  const prepared = await prepareDatabase(db, { adoptBilling: !demo });
  if (prepared.billingAdoption) log(describeAdoption(prepared.billingAdoption));
  if (prepared.migrations.length) log(`migrations applied: ${prepared.migrations.join(", ")}`);
  if (prepared.initialRollup?.rows) log(`rollups built for ${prepared.initialRollup.rows.toLocaleString("en-US")} existing rows (${prepared.initialRollup.ms} ms)`);
  if (prepared.constraint.changed) log(`action-type constraint updated (added: ${prepared.constraint.added.join(", ") || "none"})`);

  if (env.TOKENBOARD_INGEST_KEY) await registerApiKey(db, "TOKENBOARD_INGEST_KEY", "ingest", env.TOKENBOARD_INGEST_KEY);
  if (env.TOKENBOARD_LEDGER_KEY) await registerApiKey(db, "TOKENBOARD_LEDGER_KEY", "ledger", env.TOKENBOARD_LEDGER_KEY);

  if (env.TOKENBOARD_ADMIN_EMAIL && env.TOKENBOARD_ADMIN_PASSWORD) {
    const outcome = await ensureAdmin(db, env.TOKENBOARD_ADMIN_EMAIL, env.TOKENBOARD_ADMIN_PASSWORD);
    log(`admin ${env.TOKENBOARD_ADMIN_EMAIL} ${outcome}`);
  } else if (env.TOKENBOARD_ADMIN_EMAIL || env.TOKENBOARD_ADMIN_PASSWORD) {
    throw new Error("set both TOKENBOARD_ADMIN_EMAIL and TOKENBOARD_ADMIN_PASSWORD, or neither");
  }
  if (demo) {
    await loadDemoDataOnce(db, process.env.DATABASE_URL as string, env, log);
    const adopted = await adoptBillingOnce(db);
    if (adopted) log(describeAdoption(adopted));
    const accounts = await ensureDemoAccounts(db, env.TOKENBOARD_DATA_DIR, !env.TOKENBOARD_ADMIN_EMAIL);
    for (const account of accounts) log(`demo ${account.role.padEnd(7)} login: ${account.email} / ${account.password}`);
  }

  if (env.TOKENBOARD_JOBS === "on") running.jobs = startJobs(process.env.DATABASE_URL as string, log);

  let app;
  if (dev) {
    const vite = await import("vite");
    const viteServer = await vite.createServer({ server: { middlewareMode: true } });
    app = createApp({
      mode: "development",
      devMiddleware: viteServer.middlewares,
      build: () => viteServer.ssrLoadModule("virtual:remix/server-build") as Promise<ServerBuild>,
      trustProxy: env.TOKENBOARD_TRUST_PROXY,
    });
  } else {
    const buildDir = process.env.TOKENBOARD_BUILD_DIR ?? "build";
    const buildPath = path.resolve(buildDir, "server/index.js");
    if (!fs.existsSync(buildPath)) throw new Error("no build found: run `npm run build` first (npm start does it for you)");
    const build = (await import(buildPath)) as ServerBuild;
    app = createApp({ mode: "production", build, clientDir: path.resolve(buildDir, "client"), trustProxy: env.TOKENBOARD_TRUST_PROXY });
  }
  running.server = app.listen(env.PORT, env.HOST, () => {
    log(`serving on http://localhost:${env.PORT}`);
  });
}

main().catch((error: unknown) => {
  logger.fatal(`could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
