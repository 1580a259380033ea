import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type pg from "pg";
import { inject } from "vitest";
import { createDb, createPool } from "../../db/database";
import type { Database } from "../../db/types";

export interface TestDatabase {
  name: string;
  url: string;
  db: Kysely<Database>;
  pool: pg.Pool;
  drop: () => Promise<void>;
}

function urlFor(database: string): string {
  const url = new URL(inject("pgServerUrl"));
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * A fresh database for one test file: a copy of the migrated template (or an empty one with
 * `empty: true`, for migration and adoption tests). Also points the app's DATABASE_URL at it,
 * so loaders and actions called in the test use it.
 */
export async function createTestDatabase(options: { empty?: boolean; setAppUrl?: boolean } = {}): Promise<TestDatabase> {
  const name = `t_${randomBytes(6).toString("hex")}`;
  const admin = createPool(inject("pgServerUrl"), 1);
  try {
    await admin.query(options.empty ? `CREATE DATABASE ${name}` : `CREATE DATABASE ${name} TEMPLATE ${inject("pgTemplate")}`);
  } finally {
    await admin.end();
  }
  const url = urlFor(name);
  const { db, pool } = createDb(url, 8);
  if (options.setAppUrl !== false) {
    process.env.DATABASE_URL = url;
    globalThis.__tokenboardDb = { db, pool };
  }
  return {
    name,
    url,
    db,
    pool,
    drop: async () => {
      if (globalThis.__tokenboardDb?.db === db) globalThis.__tokenboardDb = undefined;
      await db.destroy();
      const cleanup = createPool(inject("pgServerUrl"), 1);
      await cleanup.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
      await cleanup.end();
    },
  };
}
