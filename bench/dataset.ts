/**
 * Bench data sets: one embedded cluster per size under bench/.data/pg-<rows>, built with
 * durability off (throwaway data) by the demo-data generator once and reused while a settings
 * flag says it holds that size, seed and generator version. Scenarios run with the durability
 * asked for: "full" is fsync, synchronous_commit and full_page_writes on, as `npm start` runs.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { sql, type Kysely } from "kysely";
import type pg from "pg";
import { createDb } from "../db/database";
import { processAlive, startEmbedded, type EmbeddedDatabase } from "../db/embedded";
import { generateDemoData } from "../db/seed/generator";
import { prepareDatabase } from "../db/setup";
import type { Database } from "../db/types";

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const FLAG = "bench_dataset";
const SEED = 7;
const DAYS = 90;
/** Bump when the generator changes what it produces, so old data sets are rebuilt. */
const GENERATOR_VERSION = 1;

export interface DatasetFlag {
  rows: number;
  users: number;
  seed: number;
  days: number;
  version: number;
  /** The `now` the data set ends at: scenarios take their "last 30 days" from here. */
  now: string;
  loadMs: number;
}

export type Durability = "full" | "none";

export interface OpenDataset {
  durability: Durability;
  db: Kysely<Database>;
  pool: pg.Pool;
  url: string;
  flag: DatasetFlag;
  /** True when this run generated the data (false: reused from an earlier run). */
  built: boolean;
  dir: string;
  close: () => Promise<void>;
}

/** Users grow with the data set (one per 1,000 rows, at least 1,000), as in a real app. */
export function usersFor(rows: number): number {
  return Math.max(1_000, Math.round(rows / 1_000));
}

export function datasetDir(rows: number): string {
  return path.join(BENCH_DIR, ".data", `pg-${rows}`);
}

async function readFlag(db: Kysely<Database>): Promise<DatasetFlag | null> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", FLAG).executeTakeFirst();
  return (row?.value as DatasetFlag | undefined) ?? null;
}

function matches(flag: DatasetFlag | null, rows: number): flag is DatasetFlag {
  return flag !== null && flag.rows === rows && flag.seed === SEED && flag.version === GENERATOR_VERSION && flag.days === DAYS;
}

async function start(dir: string, log: (line: string) => void, durability: Durability = "none"): Promise<{ embedded: EmbeddedDatabase; db: Kysely<Database>; pool: pg.Pool }> {
  const embedded = await startEmbedded({ dataDir: dir, durability, log: (line) => (/error|fatal/i.test(line) ? log(line) : undefined) });
  const { db, pool } = createDb(embedded.url("tokenboard"), 10);
  // Bench data carries no billing history to adopt; adoption would charge its whole usage first.
  await prepareDatabase(db, { adoptBilling: false });
  return { embedded, db, pool };
}

/**
 * One bench run per data set at a time: starting the cluster would stop another run's
 * server (db/embedded.ts recovers "stale" servers), and two runs would skew each other's
 * timings anyway. The lock file names its holder; a dead holder's lock is taken over.
 */
async function lockDataset(dir: string, log: (line: string) => void): Promise<() => void> {
  const file = `${dir}.lock`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let waiting = false;
  for (;;) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number.parseInt(fs.readFileSync(file, "utf8"), 10);
    if (!Number.isInteger(holder) || !processAlive(holder)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    if (!waiting) log(`waiting for another bench run (pid ${holder}) that uses ${path.basename(dir)}`);
    waiting = true;
    await new Promise((resolve) => setTimeout(resolve, 5_000));
  }
}

/** Opens (building it first if needed) the data set of `rows` usage rows. */
export async function openDataset(rows: number, options: { fresh: boolean; durability: Durability; log: (line: string) => void }): Promise<OpenDataset> {
  const { log } = options;
  const dir = datasetDir(rows);
  const unlock = await lockDataset(dir, log);
  try {
    return await openLocked(rows, dir, options.fresh, options.durability, log, unlock);
  } catch (error) {
    unlock();
    throw error;
  }
}

async function openLocked(rows: number, dir: string, fresh: boolean, durability: Durability, log: (line: string) => void, unlock: () => void): Promise<OpenDataset> {
  if (fresh) fs.rmSync(dir, { recursive: true, force: true });
  let server = await start(dir, log);
  let flag = await readFlag(server.db);
  const built = !matches(flag, rows);
  if (matches(flag, rows)) {
    log(`data set ${rows.toLocaleString("en-US")} rows: reused (${dir}, loaded ${flag.now})`);
    await catchUpRollups(server.db, log);
  } else {
    if (await server.db.selectFrom("token_usage").select("id").limit(1).executeTakeFirst()) {
      // Another size, seed or generator version (or a half-built set): start over.
      await server.db.destroy();
      await server.embedded.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      server = await start(dir, log);
    }
    flag = await build(server.db, server.embedded.url("tokenboard"), rows, log);
  }
  if (durability === "full") {
    // Built fast; measured as `npm start` runs. A clean stop checkpoints, so nothing is lost.
    await server.db.destroy();
    await server.embedded.stop();
    server = await start(dir, log, "full");
  }
  await assertDurability(server.db, durability);
  const { embedded, db, pool } = server;
  return {
    durability,
    db,
    pool,
    url: embedded.url("tokenboard"),
    flag,
    built,
    dir,
    close: async () => {
      try {
        await db.destroy();
        await embedded.stop();
      } finally {
        unlock();
      }
    },
  };
}

async function build(db: Kysely<Database>, url: string, rows: number, log: (line: string) => void): Promise<DatasetFlag> {
  const users = usersFor(rows);
  // Whole minutes keep the data set's "now" readable in the flag and the docs.
  const now = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  log(`data set ${rows.toLocaleString("en-US")} rows: generating (${users.toLocaleString("en-US")} users, ${DAYS} days, seed ${SEED})`);
  let lastTenth = -1;
  const result = await generateDemoData(url, {
    users,
    rows,
    days: DAYS,
    seed: SEED,
    now,
    log: (line) => log(`  ${line}`),
    onProgress: (done, total) => {
      const tenth = Math.floor((done / Math.max(total, 1)) * 10);
      if (tenth !== lastTenth) {
        lastTenth = tenth;
        log(`  ${tenth * 10}% (${done.toLocaleString("en-US")} rows)`);
      }
    },
  });
  const flag: DatasetFlag = { rows: result.rows, users, seed: SEED, days: DAYS, version: GENERATOR_VERSION, now: now.toISOString(), loadMs: result.ms };
  await db
    .insertInto("settings")
    .values({ key: FLAG, value: JSON.stringify(flag) })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value: JSON.stringify(flag) }))
    .execute();
  const seconds = result.ms / 1000;
  log(`data set ${rows.toLocaleString("en-US")} rows: loaded in ${seconds.toFixed(1)} s (${Math.round(result.rows / seconds).toLocaleString("en-US")} rows/s, including index builds and rollups)`);
  return flag;
}

/**
 * A reused data set may predate a new rollup table (a migration added since): let the
 * rollup module build what it lacks, as `npm start` does on an adopted database.
 */
async function catchUpRollups(db: Kysely<Database>, log: (line: string) => void): Promise<void> {
  const rollups = await import("../app/models/rollup.server").catch(() => null);
  if (!rollups || typeof rollups.rollupJob !== "function") return;
  const outcome = await rollups.rollupJob(db);
  if (outcome.summary) log(`  rollups: ${outcome.summary}`);
}

/**
 * Before each scenario (bench/run.ts) and between the load scenario's two runs, untimed: what
 * earlier writes left for the server to do in the background is done now — VACUUM (ANALYZE), so
 * that autovacuum does not do it during the next measurements (after the ingest scenario it ran
 * ~40 s over the per-user rollup tables, in the middle of the ledger's), a CHECKPOINT, so that
 * the dirty pages are not written meanwhile, then a wait for any autovacuum worker still
 * running. VACUUM skips pages it knows to be all-visible, so the untouched bulk of a data set
 * costs little. Answers ms.
 */
export async function settleAfterWrites(db: Kysely<Database>): Promise<number> {
  const started = performance.now();
  await sql`VACUUM (ANALYZE)`.execute(db);
  await sql`CHECKPOINT`.execute(db);
  // An autovacuum worker that started before (on a table the writes touched) finishes first.
  while (performance.now() - started < 120_000) {
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`.execute(db);
    if (!rows[0]?.n) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return performance.now() - started;
}

/** The server's settings say what the run claims: write figures with durability "full" are real. */
async function assertDurability(db: Kysely<Database>, durability: Durability): Promise<void> {
  const { rows } = await sql<{ name: string; setting: string }>`
    SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')`.execute(db);
  const expected = durability === "full" ? "on" : "off";
  const wrong = rows.filter((r) => r.setting !== expected);
  if (rows.length !== 3 || wrong.length) {
    throw new Error(`durability ${durability} expected ${expected} for fsync, synchronous_commit, full_page_writes; got ${rows.map((r) => `${r.name}=${r.setting}`).join(", ")}`);
  }
}

/** The data set's end, for scenarios that look at "the last N days". */
export async function datasetNow(db: Kysely<Database>): Promise<Date> {
  const flag = await readFlag(db);
  return flag ? new Date(flag.now) : new Date();
}

/** Bytes on disk under a directory (the cost of keeping a data set around). */
export function directorySize(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += fs.statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}
