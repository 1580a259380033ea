/**
 * Load: ingest at the highest rate two clients sustain for a bounded time and count (60 s by
 * default, BENCH_LOAD_SECONDS to change; at most BENCH_LOAD_MAX_EVENTS events, 5,000,000;
 * loopback only), twice: events of as many recurring users as the
 * data set has (BENCH_LOAD_USERS to change), then a new user per event; meanwhile one viewer
 * refreshes the overview (its loader queries) up to 5 times a second (BENCH_LOAD_READS to
 * change), and the rollup job runs as in production (server/jobs.ts). Events are stamped within
 * the minute before they are sent (BENCH_LOAD_STAMP_SECONDS; the knobs: ./load-options.ts). The
 * ingest clients run in a process of their own (bench/child.ts); the bench's process is the
 * app: the ingest server, the reader and the job runner. Reports
 * events/s, loader p95 during the load, CPU per event of the app, PostgreSQL and the clients,
 * the 503s answered under backpressure (the client retries them), and rows lost (acknowledged
 * events missing from token_usage: must be 0). Everything inserted is deleted at the end; the
 * rollup job removes the per-user rollup rows that brings to zero (docs/rollups.md).
 */
import { randomUUID } from "node:crypto";
import os from "node:os";
import { sql, type Kysely } from "kysely";
import type { Database } from "../../db/types";
import { makeRange, todayIn, addDays } from "../../app/domain/period";
import { registerApiKey } from "../../app/lib/auth.server";
import { closeDb } from "../../app/lib/db.server";
import { createDb } from "../../db/database";
import { chargingEnabled } from "../../app/models/charging.server";
import { runRollup, USER_ROLLUP_TABLES } from "../../app/models/rollup.server";
import { overviewUsage } from "../../app/routes/overview/queries.server";
import { createTokenboardClient } from "../../client/track-token-usage";
import { runInChild, serveChildJob } from "../child";
import { settleAfterWrites } from "../dataset";
import { cpuDelta, formatMs, postgresCpu, summarize } from "../measure";
import type { BenchContext, BenchScenario } from "../types";
import { benchEvent, serveIngestRoute } from "./ingest";
import { JOBS, startJobs } from "../../server/jobs";
import { parseLoadOptions, type LoadOptions } from "./load-options";

const NAME = "load";
const PREFIX = "bench-load-";
const CLIENTS = 2;
const BATCH = 1000;
const TARGET_EVENTS_PER_SECOND = 20_000;

/**
 * Bench events have users of their own, so once they are deleted and rolled up their per-user
 * rollup rows are all zero. The rollup job removes those itself now; this sweeps the ones runs
 * of earlier versions left, which would lengthen every later per-user read.
 */
async function removeEmptyUserRows(db: Kysely<Database>): Promise<number> {
  let removed = 0;
  for (const table of USER_ROLLUP_TABLES) {
    const result = await sql`DELETE FROM ${sql.table(`tokenboard.${table}`)} WHERE calls = 0 AND failures = 0 AND tokens = 0 AND cost_cents = 0`.execute(db);
    removed += Number(result.numAffectedRows ?? 0);
  }
  return removed;
}

/** What charging did during a run (decision 016): entries written, rows they charged, what was left to charge. */
interface ChargingFigure {
  entries: number;
  rowsCharged: number;
  rowsIngested: number;
  staged: number;
  queued: number;
  /** Charged + staged + queued equals the charge of every stored bench row. */
  exact: boolean;
}

async function chargingFigure(db: Kysely<Database>, ledgerBefore: number): Promise<ChargingFigure> {
  const { rows } = await sql<ChargingFigure & { charged: number; owed: number; pending: number; queued_tokens: number }>`
    SELECT (SELECT count(*) FROM tokenboard.ledger_entries WHERE id > ${ledgerBefore} AND kind = 'usage')::int AS entries,
           (SELECT COALESCE(-sum(amount), 0) FROM tokenboard.ledger_entries WHERE id > ${ledgerBefore} AND kind IN ('usage', 'correction'))::float8 AS charged,
           (SELECT COALESCE(sum(cardinality(t.usage_ids)), 0) FROM tokenboard.usage_charge_traces t WHERE t.entry_id > ${ledgerBefore})::int AS "rowsCharged",
           (SELECT count(*) FROM token_usage WHERE event_id LIKE ${`${PREFIX}%`})::int AS "rowsIngested",
           (SELECT COALESCE(sum(cardinality(usage_ids)), 0) FROM tokenboard.pending_charges)::int AS staged,
           (SELECT COALESCE(-sum(amount), 0) FROM tokenboard.pending_charges)::float8 AS pending,
           (SELECT count(*) FROM tokenboard.usage_rollup_queue WHERE usage_id IS NOT NULL)::int AS queued,
           (SELECT COALESCE(sum(q.sign * COALESCE(o.token_value, q.tokens_used)), 0) FROM tokenboard.usage_rollup_queue q
              LEFT JOIN ai_action_token_overrides o ON o.action_type = q.action_type WHERE q.usage_id IS NOT NULL AND q.success)::float8 AS queued_tokens,
           (SELECT COALESCE(sum(COALESCE(o.token_value, u.tokens_used)), 0) FROM token_usage u
              LEFT JOIN ai_action_token_overrides o ON o.action_type = u.action_type WHERE u.event_id LIKE ${`${PREFIX}%`} AND u.success)::float8 AS owed`.execute(db);
  const r = rows[0]!;
  return { entries: r.entries, rowsCharged: r.rowsCharged, rowsIngested: r.rowsIngested, staged: r.staged, queued: r.queued, exact: r.charged + r.pending + r.queued_tokens === r.owed };
}

/**
 * Removes the ledger rows charging wrote for the run's users (entries, traces, balances, audit
 * rows), as the ledger scenario does for its own: the ledger and the audit log refuse DELETE by
 * trigger, so triggers are off for this one transaction. Every entry after `ledgerBefore` is the
 * run's: nothing else writes to the ledger while the bench runs.
 */
async function removeChargingRows(ctx: BenchContext, ledgerBefore: number): Promise<void> {
  const client = await ctx.pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SET LOCAL session_replication_role = replica");
    await client.query("CREATE TEMP TABLE bench_load_payers ON COMMIT DROP AS SELECT DISTINCT user_id FROM tokenboard.ledger_entries WHERE id > $1", [ledgerBefore]);
    await client.query("DELETE FROM tokenboard.usage_charge_traces WHERE entry_id > $1", [ledgerBefore]);
    await client.query("DELETE FROM tokenboard.ledger_entries WHERE user_id IN (SELECT user_id FROM bench_load_payers)");
    await client.query("DELETE FROM tokenboard.token_balances WHERE user_id IN (SELECT user_id FROM bench_load_payers)");
    await client.query("DELETE FROM tokenboard.audit_log WHERE target_type = 'user' AND target_id IN (SELECT user_id::text FROM bench_load_payers) AND action LIKE 'ledger.%'");
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK");
    throw error;
  } finally {
    client.release();
  }
}

interface LoadRun {
  charging: ChargingFigure;
  seconds: number;
  accepted: number;
  duplicates: number;
  failedBatches: number;
  refused: number;
  lost: number;
  rate: number;
  reads: ReturnType<typeof summarize>;
  /** Reads that got no connection in time (or failed otherwise), and the first one's message. */
  readFailures: number;
  firstReadFailure: string | undefined;
  queueMax: number;
  queueEnd: number;
  /** Stopped at BENCH_LOAD_MAX_EVENTS before the time was up. */
  countReached: boolean;
  /** The clients' sending time, from the first batch sent to the last answer. */
  ms: number;
  cpu: CpuPerEvent;
}

/** CPU per accepted event, in microseconds, of each part. */
interface CpuPerEvent {
  /** The bench's process: the ingest server, the overview reader and the rollup job runner (as `npm start` runs them in one). */
  appUs: number;
  postgresUs: number | null;
  clientUs: number;
}

/** What the client process is sent: where to post, for how long, and the users to send events of. */
interface ClientJob {
  url: string;
  key: string;
  seconds: number;
  /** Recurring users, or none for a new user per event. */
  users: string[];
  /** Events are stamped within this many seconds before they are sent. */
  stampedWithinSeconds: number;
  /** The clients together send at most this many events (whole batches). */
  maxEvents: number;
}

interface ClientStats {
  accepted: number;
  duplicates: number;
  failedBatches: number;
  refused: number;
  /** From the first batch sent to the last answer. */
  ms: number;
  cpuSeconds: number;
  /** The run ended at BENCH_LOAD_MAX_EVENTS rather than at its time bound. */
  countReached: boolean;
}

/** Set in the forked client process's environment. */
const CLIENT_FLAG = "TOKENBOARD_LOAD_BENCH_CLIENT";

/** In the client process: CLIENTS typed clients posting 1000-event batches until the time is up or `maxEvents` are sent. */
async function ingestHere(job: ClientJob): Promise<ClientStats> {
  const started = performance.now();
  const deadline = started + job.seconds * 1000;
  const cpuBefore = process.cpuUsage();
  const stats: ClientStats = { accepted: 0, duplicates: 0, failedBatches: 0, refused: 0, ms: 0, cpuSeconds: 0, countReached: false };
  let next = 0;
  // Counts the 503s (backpressure) the client sees before it retries them.
  const countingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (response.status === 503) stats.refused += 1;
    return response;
  };
  const ingestClient = async () => {
    const client = createTokenboardClient({ baseUrl: job.url, ingestKey: job.key, retries: 20, fetch: countingFetch });
    // Claimed before the await: the clients share `next`, so together they send at most maxEvents.
    while (performance.now() < deadline && next + BATCH <= job.maxEvents) {
      const offset = (next += BATCH);
      const batch = Array.from({ length: BATCH }, (_, i) => benchEvent(offset + i, PREFIX, job.users.length ? job.users[(offset + i) % job.users.length] : undefined, job.stampedWithinSeconds));
      try {
        // Await first: `accepted += await …` would read `accepted` before the other client adds to it.
        const answer = await client.trackTokenUsage(batch);
        stats.accepted += answer.accepted;
        // Only a retry of a stored batch whose answer was lost (a timeout) gives duplicates here.
        stats.duplicates += answer.duplicates;
      } catch {
        stats.failedBatches += 1;
      }
    }
    if (next + BATCH > job.maxEvents) stats.countReached = true;
  };
  await Promise.all(Array.from({ length: CLIENTS }, ingestClient));
  stats.ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  stats.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return stats;
}

serveChildJob(CLIENT_FLAG, ingestHere);

/**
 * One bounded load run: CLIENTS ingest clients (in a process of their own), overview loads at
 * up to `options.BENCH_LOAD_READS` a second and the production rollup job for
 * `options.BENCH_LOAD_SECONDS`. `users` recurring users send the events (an app's users call
 * it again and again), or with 0 every event has a new
 * user, the worst case for the per-user rollups: the job inserts four per-user rows for every
 * event instead of updating rows it has.
 */
async function runLoad(ctx: BenchContext, options: LoadOptions, users: number): Promise<LoadRun> {
  const { BENCH_LOAD_SECONDS: seconds, BENCH_LOAD_READS: readsPerSecond } = options;
  // A run stopped half-way leaves its events; they would count as stored by this one.
  await sql`DELETE FROM token_usage WHERE event_id LIKE ${`${PREFIX}%`}`.execute(ctx.db);
  await runRollup(ctx.db);
  const leftovers = await removeEmptyUserRows(ctx.db);
  if (leftovers) ctx.log(`load: removed ${leftovers.toLocaleString("en-US")} all-zero per-user rollup rows that earlier bench runs left`);
  const key = `bench-load-key-${randomUUID()}`;
  await registerApiKey(ctx.db, "bench load", "ingest", key);
  const ledgerBefore = Number((await sql<{ id: number }>`SELECT COALESCE(max(id), 0)::bigint AS id FROM tokenboard.ledger_entries`.execute(ctx.db)).rows[0]?.id ?? 0);
  await closeDb();
  process.env.DATABASE_URL = ctx.url;
  const server = await serveIngestRoute();
  // Reader and sampler run until the client process has sent its last batch (it starts sending
  // ~1.5 s after the fork, once its modules are loaded).
  let loading = true;
  let queueMax = 0;
  const sampler = async () => {
    while (loading) {
      // Statistics, not count(*): counting walks the rows the job deleted but readers still see.
      // A sample that fails (no connection in time under an overload) is skipped: the run goes on.
      const { rows } = await sql<{ n: number }>`SELECT n_live_tup AS n FROM pg_stat_user_tables WHERE relid = 'tokenboard.usage_rollup_queue'::regclass`
        .execute(ctx.db)
        .catch(() => ({ rows: [] as { n: number }[] }));
      queueMax = Math.max(queueMax, Number(rows[0]?.n ?? 0));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  };
  const range = makeRange(addDays(todayIn("UTC"), -29), todayIn("UTC"), "UTC");
  // Page loads get a pool of their own, apart from the bench's own connections.
  const { db: readerDb } = createDb(ctx.url, 2);
  const readLatencies: number[] = [];
  let readFailures = 0;
  let firstReadFailure: string | undefined;
  // One viewer refreshing the overview: a read starts when the last one has been answered and
  // at least 1/readsPerSecond s after it started — readsPerSecond a second while reads are
  // quick, fewer when they are slow. A reader with no pause takes whatever CPU ingest leaves
  // (the rate then measures a split between the two); reads started on a clock regardless of
  // answers pile up once they slow down, until PostgreSQL does nothing else (tried: at 10M the
  // reads took seconds each and ingest fell to 2,262 events/s).
  const reader = async () => {
    while (loading) {
      const started = performance.now();
      try {
        await overviewUsage(readerDb, range);
        readLatencies.push(performance.now() - started);
      } catch (error) {
        // A page load that gets no connection in time (the pool waits 5 s): counted, not fatal.
        readFailures += 1;
        firstReadFailure ??= error instanceof Error ? error.message : String(error);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 1000 / readsPerSecond - performance.now())));
    }
  };
  // The production job runner and job, as `npm start` runs them.
  const jobs = startJobs(ctx.url, () => undefined, JOBS.filter((job) => job.name === "usage-rollup"));
  const pgBefore = await postgresCpu(ctx.pool);
  const appBefore = process.cpuUsage();
  let client: ClientStats;
  try {
    const userPool = Array.from({ length: users }, () => randomUUID());
    const clients = runInChild<ClientJob, ClientStats>(import.meta.url, CLIENT_FLAG, { url: server.url, key, seconds, users: userPool, stampedWithinSeconds: options.BENCH_LOAD_STAMP_SECONDS, maxEvents: options.BENCH_LOAD_MAX_EVENTS }).finally(() => {
      loading = false;
    });
    [client] = await Promise.all([clients, reader(), sampler()]);
  } finally {
    await jobs.stop();
    await readerDb.destroy();
    await server.close();
    await closeDb();
  }
  const app = process.cpuUsage(appBefore);
  const postgres = cpuDelta(pgBefore, await postgresCpu(ctx.pool));
  const { accepted, duplicates, failedBatches, refused } = client;
  const perEvent = (cpuSeconds: number) => (cpuSeconds * 1e6) / Math.max(1, accepted);
  const cpu: CpuPerEvent = { appUs: perEvent((app.user + app.system) / 1e6), postgresUs: postgres === null ? null : perEvent(postgres), clientUs: perEvent(client.cpuSeconds) };
  const queueEnd = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM tokenboard.usage_rollup_queue`.execute(ctx.db);
  const stored = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM token_usage WHERE event_id LIKE ${`${PREFIX}%`}`.execute(ctx.db);
  const lost = accepted + duplicates - Number(stored.rows[0]?.n ?? 0);
  const charging = await chargingFigure(ctx.db, ledgerBefore);
  await sql`DELETE FROM token_usage WHERE event_id LIKE ${`${PREFIX}%`}`.execute(ctx.db);
  await ctx.db.deleteFrom("api_keys").where("name", "=", "bench load").execute();
  await runRollup(ctx.db);
  await removeChargingRows(ctx, ledgerBefore);
  await removeEmptyUserRows(ctx.db);
  await settleAfterWrites(ctx.db);
  const run: LoadRun = {
    charging,
    seconds, accepted, duplicates, failedBatches, refused, lost, rate: Math.round((accepted * 1000) / client.ms),
    reads: summarize(readLatencies), readFailures, firstReadFailure, queueMax, queueEnd: Number(queueEnd.rows[0]?.n ?? 0), cpu, countReached: client.countReached, ms: client.ms,
  };
  ctx.log(`load (${users ? `${users.toLocaleString("en-US")} recurring users` : "a new user per event"}): ${accepted.toLocaleString("en-US")} events in ${formatMs(client.ms)}${client.countReached ? ` (stopped at BENCH_LOAD_MAX_EVENTS=${options.BENCH_LOAD_MAX_EVENTS.toLocaleString("en-US")})` : ""} (${run.rate.toLocaleString("en-US")}/s), ${refused} answers 503 (retried), ${failedBatches} failed batches, overview p95 ${formatMs(run.reads.p95)} over ${readLatencies.length} reads${readFailures ? ` (${readFailures} more failed: ${firstReadFailure})` : ""}, ${lost} lost; rollup queue at most ${queueMax.toLocaleString("en-US")} rows, ${run.queueEnd.toLocaleString("en-US")} at the end; CPU per event ${describeCpu(cpu)}; ${describeCharging(charging)}`);
  return run;
}

function describeCharging(c: ChargingFigure): string {
  return `charging: ${c.rowsCharged.toLocaleString("en-US")} of ${c.rowsIngested.toLocaleString("en-US")} rows charged by the job during the load in ${c.entries.toLocaleString("en-US")} entries, ${c.staged.toLocaleString("en-US")} staged and ${c.queued.toLocaleString("en-US")} queued at its end, balances ${c.exact ? "exact" : "NOT exact"}`;
}

/** CPU per event of each part, and the rate that much CPU per event allows on this machine's cores. */
function describeCpu(cpu: CpuPerEvent): string {
  const parts = `app process ${cpu.appUs.toFixed(0)} µs, PostgreSQL ${cpu.postgresUs === null ? "n/a" : `${cpu.postgresUs.toFixed(0)} µs`}, client ${cpu.clientUs.toFixed(0)} µs`;
  if (cpu.postgresUs === null) return parts;
  const total = cpu.appUs + cpu.postgresUs + cpu.clientUs;
  const cores = os.availableParallelism();
  return `${parts}; ${total.toFixed(0)} µs in all, so ${cores} cores carry at most ~${Math.round((cores * 1e6) / total).toLocaleString("en-US")} events/s`;
}

export const loadScenario: BenchScenario = {
  name: NAME,
  writes: true,
  run: async (ctx) => {
    const options = parseLoadOptions(process.env);
    const { BENCH_LOAD_SECONDS: seconds, BENCH_LOAD_READS: readsPerSecond, BENCH_LOAD_STAMP_SECONDS: stampedWithin } = options;
    // As many recurring users as the data set has (1,000 / 10,000), BENCH_LOAD_USERS to change;
    // then the same with a new user per event, the per-user rollups' worst case.
    const known = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM tokenboard.app_users`.execute(ctx.db);
    const users = options.BENCH_LOAD_USERS ?? Math.max(1, Number(known.rows[0]?.n ?? 1000));
    const usual = await runLoad(ctx, options, users);
    const worst = await runLoad(ctx, options, 0);
    const lost = usual.lost + worst.lost;
    const describeReads = (r: LoadRun) =>
      `${formatMs(r.reads.p95)} p95 (p50 ${formatMs(r.reads.p50)}, n=${r.reads.samples.length}${r.readFailures ? `; ${r.readFailures} failed: ${r.firstReadFailure}` : ""})`;
    return [
      { scenario: NAME, metric: `ingest for ${usual.countReached ? `${formatMs(usual.ms)} (stopped at ${options.BENCH_LOAD_MAX_EVENTS.toLocaleString("en-US")} events)` : `${seconds} s`}, ${CLIENTS} clients × 1000-event batches of ${users.toLocaleString("en-US")} recurring users stamped within the last ${stampedWithin === 60 ? "minute" : `${stampedWithin.toLocaleString("en-US")} s`}, while the overview is refreshed up to ${readsPerSecond} times a second`, measured: `${usual.rate.toLocaleString("en-US")} events/s`, target: `>= ${TARGET_EVENTS_PER_SECOND.toLocaleString("en-US")} events/s`, pass: usual.rate >= TARGET_EVENTS_PER_SECOND },
      { scenario: NAME, metric: "overview loader queries during that load", measured: describeReads(usual), target: "", pass: null },
      { scenario: NAME, metric: "CPU per event during that load (reader and rollup job included)", measured: describeCpu(usual.cpu), target: "", pass: null },
      { scenario: NAME, metric: "the same with a new user per event (per-user rollups' worst case)", measured: `${worst.rate.toLocaleString("en-US")} events/s, overview ${describeReads(worst)}`, target: "", pass: null },
      { scenario: NAME, metric: "503 + Retry-After answered under backpressure (retried by the client)", measured: `${(usual.refused + worst.refused).toLocaleString("en-US")} (${usual.failedBatches + worst.failedBatches} batches given up)`, target: "", pass: null },
      { scenario: NAME, metric: "usage charging during that load (recurring users; a new user per event)", measured: `${describeCharging(usual.charging)}; ${describeCharging(worst.charging)}`, target: "charged + staged + queued = owed", pass: chargingEnabled() ? usual.charging.exact && worst.charging.exact : null },
      { scenario: NAME, metric: "accepted events missing from token_usage", measured: `${lost} (of ${(usual.accepted + usual.duplicates + worst.accepted + worst.duplicates).toLocaleString("en-US")})`, target: "0", pass: lost === 0 },
    ];
  },
};
