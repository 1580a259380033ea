import type { Kysely } from "kysely";
import { createDb, type DbHandle } from "../../db/database";
import type { Database } from "../../db/types";

declare global {
  // One pool per process, also across dev-server module reloads.
  var __tokenboardDb: DbHandle | undefined;
}

function handle(): DbHandle {
  if (!globalThis.__tokenboardDb) {
    const url = process.env.DATABASE_URL;
    if (!url) throw new Error("DATABASE_URL is not set: start tokenboard with `npm start`, which sets it");
    globalThis.__tokenboardDb = createDb(url, 20);
  }
  return globalThis.__tokenboardDb;
}

export function getDb(): Kysely<Database> {
  return handle().db;
}

export function getPool() {
  return handle().pool;
}

export async function closeDb(): Promise<void> {
  const current = globalThis.__tokenboardDb;
  globalThis.__tokenboardDb = undefined;
  if (current) await current.db.destroy();
}
