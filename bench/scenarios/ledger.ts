/**
 * Ledger adjustments per second through the HTTP API on loopback: POST /api/v1/ledger with a
 * ledger key, served by the real express app (the Remix build when one exists, else the
 * route's action behind a bare HTTP server). One hot user (every request contends for one
 * balance row) and 10,000 users. Afterwards the invariants are checked in SQL: balance =
 * sum of the ledger = start + accepted grants − accepted deductions, no negative balance,
 * one entry per accepted request. Beside it, a naive read-then-write handler under the same
 * load shows the updates it loses.
 *
 * The load client (CONCURRENCY keep-alive connections) runs in a child process, as a real
 * client would: this file forked with TOKENBOARD_LEDGER_BENCH_CLIENT set. The server, its
 * pool and PostgreSQL get the rest of the machine; the client's own cost is not counted
 * against the server's event loop.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { ServerBuild } from "@remix-run/node";
import express from "express";
import { sql } from "kysely";
import type pg from "pg";
import { registerApiKey } from "../../app/lib/auth.server";
import { runInChild, serveChildJob } from "../child";
import { cpuDelta, postgresCpu } from "../measure";
import type { BenchContext, BenchResult, BenchScenario } from "../types";

const KEY = "bench-ledger-key-0123456789";
/**
 * As many clients as the issue's concurrency test has. With 32 the group commit's batches were
 * smaller and the server waited on them: 1,667 and 1,934/s against 2,154 and 2,075/s with 64,
 * alternated on the 1M set (2026-11-30).
 */
const CONCURRENCY = 64;
/** Set in the forked load client's environment. */
const CLIENT_FLAG = "TOKENBOARD_LEDGER_BENCH_CLIENT";

interface Load {
  users: string[];
  requests: number;
}

interface RunStats {
  seconds: number;
  /** CPU seconds the client process used (or, inline, the whole process). */
  clientCpu: number;
  perSecond: number;
  accepted: number;
  refused: number;
  failed: number;
  grants: Map<string, number>;
  deductions: Map<string, number>;
}

async function startServer(ctx: BenchContext): Promise<{ base: string; close: () => Promise<void>; how: string }> {
  process.env.DATABASE_URL = ctx.url;
  const app = express();
  // The naive handler: read the balance, then write read + delta, no lock, no transaction.
  app.post("/naive", express.json(), async (req, res) => {
    const { user_id: userId, amount, kind } = req.body as { user_id: string; amount: number; kind: string };
    const delta = kind === "grant" ? amount : -amount;
    const row = await ctx.pool.query<{ balance: string }>("SELECT balance FROM tokenboard.token_balances WHERE user_id = $1", [userId]);
    const balance = Number(row.rows[0]?.balance ?? 0);
    if (balance + delta < 0) return void res.status(409).json({ error: "insufficient" });
    await ctx.pool.query("UPDATE tokenboard.token_balances SET balance = $2 WHERE user_id = $1", [userId, balance + delta]);
    res.status(201).json({ balance: balance + delta });
  });
  const buildDir = path.resolve(process.env.TOKENBOARD_BUILD_DIR ?? "build");
  const buildFile = path.join(buildDir, "server/index.js");
  let how: string;
  if (fs.existsSync(buildFile)) {
    const { createApp } = await import("../../server/app");
    // As `npm start` logs (a line per request, same cost), but to a file: stdout is the report.
    const { configureLogging } = await import("../../app/lib/logger.server");
    const pino = (await import("pino")).default;
    configureLogging(pino.destination({ dest: path.resolve("bench/results/ledger-server.log"), mkdir: true }));
    const build = (await import(buildFile)) as ServerBuild;
    app.use(createApp({ build, mode: "production" }));
    how = `Remix build ${path.relative(process.cwd(), buildDir)}`;
  } else {
    // The production API router (server/app.ts) over the route module from source.
    const { routeModuleRouter } = await import("../route-router");
    app.use(routeModuleRouter("ledger", "api/v1/ledger", await import("../../app/routes/api.v1.ledger/route")));
    how = "route action through the API router (no build found)";
  }
  const server = http.createServer(app);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    how,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
      // The app keeps one pool per process (app/lib/db.server.ts); the next data set is another server.
      const appDb = globalThis.__tokenboardDb;
      globalThis.__tokenboardDb = undefined;
      await appDb?.db.destroy();
    },
  };
}

interface DriveJob {
  base: string;
  pathName: string;
  load: Load;
}

/** What the client process reports: RunStats with its maps as entry lists. */
interface WireStats extends Omit<RunStats, "grants" | "deductions"> {
  grants: [string, number][];
  deductions: [string, number][];
}

/** In the client process: CONCURRENCY clients, each sending its share of requests one after another over keep-alive. */
async function driveHere({ base, pathName, load }: DriveJob): Promise<WireStats> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const stats: RunStats = { seconds: 0, clientCpu: 0, perSecond: 0, accepted: 0, refused: 0, failed: 0, grants: new Map(), deductions: new Map() };
  let next = 0;
  const send = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(`${base}${pathName}`, { method: "POST", agent, headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end(body);
    });
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < load.requests) {
        const i = next++;
        const userId = load.users[i % load.users.length] as string;
        // Two grants per deduction: deductions can still be refused when a user runs low.
        const kind = i % 3 === 2 ? "deduct" : "grant";
        const amount = 1 + (i % 7);
        const status = await send(JSON.stringify({ user_id: userId, amount, kind, reason: "bench", idempotency_key: `bench-${randomUUID()}` }));
        if (status === 201) {
          stats.accepted++;
          const bucket = kind === "grant" ? stats.grants : stats.deductions;
          bucket.set(userId, (bucket.get(userId) ?? 0) + amount);
        } else if (status === 409) stats.refused++;
        else stats.failed++;
      }
    }),
  );
  stats.seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  stats.clientCpu = (cpu.user + cpu.system) / 1e6;
  stats.perSecond = load.requests / stats.seconds;
  agent.destroy();
  return { ...stats, grants: [...stats.grants], deductions: [...stats.deductions] };
}

/** The load in this process instead (the way this bench measured before): LEDGER_BENCH_CLIENT=inline. */
const INLINE_CLIENT = process.env.LEDGER_BENCH_CLIENT === "inline";

/** CPU per request of each part: the server (this process), PostgreSQL and the load client. */
interface CpuSplit {
  serverMs: number;
  postgresMs: number | null;
  clientMs: number;
}

/** `drive`, with the CPU each part used per request. */
async function driveMeasured(pool: pg.Pool, base: string, pathName: string, load: Load): Promise<RunStats & { cpu: CpuSplit }> {
  const pgBefore = await postgresCpu(pool);
  const serverBefore = process.cpuUsage();
  const stats = await drive(base, pathName, load);
  const server = process.cpuUsage(serverBefore);
  const postgres = cpuDelta(pgBefore, await postgresCpu(pool));
  const perRequest = (seconds: number) => (seconds * 1000) / load.requests;
  return {
    ...stats,
    cpu: {
      // Inline, the client runs in this process: its share is taken out of the server's.
      serverMs: perRequest((server.user + server.system) / 1e6 - (INLINE_CLIENT ? stats.clientCpu : 0)),
      postgresMs: postgres === null ? null : perRequest(postgres),
      clientMs: perRequest(stats.clientCpu),
    },
  };
}

function describeCpu(cpu: CpuSplit): string {
  const total = cpu.serverMs + (cpu.postgresMs ?? 0) + cpu.clientMs;
  const cores = os.availableParallelism();
  const ceiling = cpu.postgresMs === null ? "" : `; ${total.toFixed(2)} ms in all, so ${cores} cores serve at most ~${Math.round((cores * 1000) / total)}/s`;
  return `server ${cpu.serverMs.toFixed(2)} ms, PostgreSQL ${cpu.postgresMs === null ? "n/a" : `${cpu.postgresMs.toFixed(2)} ms`}, client ${cpu.clientMs.toFixed(2)} ms${ceiling}`;
}

/** Runs the load in a client process of its own (this file, forked) and answers its stats. */
async function drive(base: string, pathName: string, load: Load): Promise<RunStats> {
  const job: DriveJob = { base, pathName, load };
  const wire = INLINE_CLIENT ? await driveHere(job) : await runInChild<DriveJob, WireStats>(import.meta.url, CLIENT_FLAG, job);
  return { ...wire, grants: new Map(wire.grants), deductions: new Map(wire.deductions) };
}

serveChildJob(CLIENT_FLAG, driveHere);

async function seedBalances(pool: pg.Pool, users: string[], start: number): Promise<void> {
  await pool.query(
    `INSERT INTO tokenboard.token_balances (user_id, balance) SELECT u, 0 FROM unnest($1::uuid[]) u ON CONFLICT (user_id) DO NOTHING`,
    [users],
  );
  // Starting balance through the ledger too, so that "balance = sum of the ledger" holds from the start.
  await pool.query(
    `WITH s AS (UPDATE tokenboard.token_balances SET balance = balance + $2 WHERE user_id = ANY($1::uuid[]) RETURNING user_id, balance)
     INSERT INTO tokenboard.ledger_entries (user_id, kind, amount, balance_after, reason, actor_label, idempotency_key)
     SELECT user_id, 'grant', $2, balance, 'bench start', 'bench', 'bench-start-' || user_id FROM s`,
    [users, start],
  );
}

/** Users whose balance differs from start + accepted grants − accepted deductions, or from their ledger, or is negative. */
async function violations(ctx: BenchContext, users: string[], start: number, stats: RunStats, withLedger = true): Promise<{ violations: number; lost: number }> {
  const rows = await sql<{ user_id: string; balance: number; ledger: number }>`
    SELECT b.user_id, b.balance, COALESCE((SELECT sum(amount) FROM ledger_entries l WHERE l.user_id = b.user_id), 0)::bigint AS ledger
    FROM token_balances b WHERE b.user_id = ANY(${users}::uuid[])`.execute(ctx.db);
  let bad = 0;
  let lost = 0;
  for (const row of rows.rows) {
    const expected = start + (stats.grants.get(row.user_id) ?? 0) - (stats.deductions.get(row.user_id) ?? 0);
    lost += Math.abs(expected - row.balance);
    if (row.balance !== expected || row.balance < 0 || (withLedger && row.ledger !== row.balance)) bad++;
  }
  return { violations: bad, lost };
}

async function measure(ctx: BenchContext, base: string, label: string, userCount: number, requests: number, target: number): Promise<BenchResult[]> {
  const start = 1_000;
  const users = Array.from({ length: userCount }, () => randomUUID());
  await seedBalances(ctx.pool, users, start);
  const ledger = await driveMeasured(ctx.pool, base, "/api/v1/ledger", { users, requests });
  const check = await violations(ctx, users, start, ledger);
  const entries = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM ledger_entries WHERE user_id = ANY(${users}::uuid[]) AND reason = 'bench'`.execute(ctx.db);
  const duplicates = Math.abs((entries.rows[0]?.n ?? 0) - ledger.accepted);
  ctx.log(`ledger ${label}: ${requests} requests in ${ledger.seconds.toFixed(2)} s = ${ledger.perSecond.toFixed(0)}/s (accepted ${ledger.accepted}, insufficient ${ledger.refused}, failed ${ledger.failed}), invariant violations ${check.violations}, entry mismatches ${duplicates}; CPU per request: ${describeCpu(ledger.cpu)}`);

  const naiveUsers = Array.from({ length: userCount }, () => randomUUID());
  await seedBalances(ctx.pool, naiveUsers, start);
  const naive = await driveMeasured(ctx.pool, base, "/naive", { users: naiveUsers, requests });
  // The naive handler writes no ledger entries: it is judged on the balance alone.
  const naiveCheck = await violations(ctx, naiveUsers, start, naive, false);
  ctx.log(`naive read-then-write ${label}: ${naive.perSecond.toFixed(0)}/s, ${naiveCheck.violations} users wrong, ${naiveCheck.lost} tokens of accepted adjustments lost; CPU per request: ${describeCpu(naive.cpu)}`);

  return [
    { scenario: "ledger", metric: `adjustments/s via HTTP, ${label}`, measured: `${ledger.perSecond.toFixed(0)}/s`, target: `>= ${target}/s`, pass: ledger.perSecond >= target },
    { scenario: "ledger", metric: `CPU per adjustment, ${label}`, measured: describeCpu(ledger.cpu), target: "", pass: null },
    { scenario: "ledger", metric: `invariant violations, ${label}`, measured: String(check.violations + duplicates + ledger.failed), target: "0", pass: check.violations + duplicates + ledger.failed === 0 },
    { scenario: "ledger", metric: `naive read-then-write, ${label}`, measured: `${naive.perSecond.toFixed(0)}/s, ${naiveCheck.lost} tokens lost on ${naiveCheck.violations} users`, target: "", pass: null },
  ];
}

/** The API key's actor label (app/lib/auth.server.ts) and the label of the starting grants. */
const BENCH_ACTORS = ["api-key:bench", "bench"];
/** Removing more rows than this rewrites the tables too (once, for a data set older runs filled). */
const COMPACT_AFTER = 100_000;

/**
 * Removes what ledger runs wrote — the entries of the bench's users, their balances and the
 * audit rows of the bench's key — so that every run starts from the data set as generated.
 * Until 2026-11-30 each run left ~40,000 entries, 20,000 balances and 40,000 audit rows behind;
 * the 1M set had gathered 2.5M entries, 1.3M balances and 1.2M audit rows, whose random-key
 * indexes (idempotency key, user, audit target: ~520 MB) no longer fit the bench server's
 * shared_buffers, so the figure depended on how often the bench had run (docs/ledger.md).
 * The ledger and the audit log refuse DELETE by trigger; the bench, a superuser on its own data
 * set, turns triggers off for this one transaction (`session_replication_role = replica`).
 */
async function removeBenchLedgerRows(ctx: BenchContext): Promise<number> {
  const client = await ctx.pool.connect();
  let removed = 0;
  try {
    await client.query("BEGIN");
    await client.query("SET LOCAL session_replication_role = replica");
    await client.query(
      `CREATE TEMP TABLE bench_ledger_users ON COMMIT DROP AS
       SELECT DISTINCT user_id FROM tokenboard.ledger_entries WHERE actor_label = ANY($1::text[])`,
      [BENCH_ACTORS],
    );
    const entries = await client.query("DELETE FROM tokenboard.ledger_entries WHERE user_id IN (SELECT user_id FROM bench_ledger_users)");
    const balances = await client.query("DELETE FROM tokenboard.token_balances WHERE user_id IN (SELECT user_id FROM bench_ledger_users)");
    const audit = await client.query("DELETE FROM tokenboard.audit_log WHERE actor_label = ANY($1::text[]) AND action LIKE 'ledger.%'", [BENCH_ACTORS]);
    await client.query("COMMIT");
    removed = (entries.rowCount ?? 0) + (balances.rowCount ?? 0) + (audit.rowCount ?? 0);
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  } finally {
    client.release();
  }
  if (removed > COMPACT_AFTER) {
    await ctx.pool.query("VACUUM (FULL, ANALYZE) tokenboard.ledger_entries, tokenboard.token_balances, tokenboard.audit_log");
  }
  return removed;
}

export const ledgerScenario: BenchScenario = {
  name: "ledger",
  writes: true,
  run: async (ctx) => {
    const left = await removeBenchLedgerRows(ctx);
    if (left > 0) ctx.log(`ledger bench: removed ${left} rows earlier runs left (entries, balances, audit)`);
    await registerApiKey(ctx.db, "bench", "ledger", KEY);
    const server = await startServer(ctx);
    ctx.log(`ledger bench: ${CONCURRENCY} concurrent HTTP clients (keep-alive, ${INLINE_CLIENT ? "in the server's process" : "in a client process of their own"}) against ${server.how}`);
    try {
      // Warm-up: JIT, connection pool, prepared plans.
      await drive(server.base, "/api/v1/ledger", { users: [randomUUID()], requests: 300 });
      return [
        ...(await measure(ctx, server.base, "one hot user", 1, 4_000, 500)),
        ...(await measure(ctx, server.base, "10,000 users", 10_000, 12_000, 2_000)),
      ];
    } finally {
      await server.close();
      await removeBenchLedgerRows(ctx);
    }
  },
};

export default ledgerScenario;
