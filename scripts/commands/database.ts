/**
 * The database a CLI command works on: DATABASE_URL when set, else the embedded one under
 * TOKENBOARD_DATA_DIR (.data), started for the command when `npm start` is not running it.
 */
import fs from "node:fs";
import path from "node:path";
import type { Kysely } from "kysely";
import type pg from "pg";
import { createDb } from "../../db/database";
import { embeddedUrl, startEmbedded, type EmbeddedDatabase } from "../../db/embedded";
import type { Database } from "../../db/types";
import { logger } from "../../app/lib/logger.server";

export interface CliDatabase {
  db: Kysely<Database>;
  pool: pg.Pool;
  url: string;
  close: () => Promise<void>;
}

function runningEmbeddedPort(pgDir: string): number | null {
  const pidFile = path.join(pgDir, "postmaster.pid");
  if (!fs.existsSync(pidFile)) return null;
  const lines = fs.readFileSync(pidFile, "utf8").split("\n");
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  try {
    process.kill(pid, 0);
    return Number.isInteger(port) && port > 0 ? port : null;
  } catch {
    return null;
  }
}

export async function openCliDatabase(): Promise<CliDatabase> {
  let embedded: EmbeddedDatabase | undefined;
  let url = process.env.DATABASE_URL;
  if (!url) {
    const pgDir = path.resolve(process.env.TOKENBOARD_DATA_DIR ?? ".data", "pg");
    const port = runningEmbeddedPort(pgDir);
    if (port) {
      url = embeddedUrl(pgDir, port);
    } else {
      embedded = await startEmbedded({ dataDir: pgDir, notice: (line) => logger.warn(line) });
      url = embedded.url("tokenboard");
    }
    process.env.DATABASE_URL = url;
  }
  const { db, pool } = createDb(url, 4);
  return {
    db,
    pool,
    url,
    close: async () => {
      await db.destroy();
      await embedded?.stop();
    },
  };
}

/** Runs `fn` with a database and always closes it. */
export async function withCliDatabase<T>(fn: (cli: CliDatabase) => Promise<T>): Promise<T> {
  const cli = await openCliDatabase();
  try {
    return await fn(cli);
  } finally {
    await cli.close();
  }
}
