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

const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "57P01", "57P02", "57P03", "53300"]);

/** True for errors that mean "the database is not reachable right now" rather than a bug. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!error || typeof error !== "object") return false;
  const code = (error as { code?: unknown }).code;
  // Class 08 is "connection exception" in every PostgreSQL version.
  if (typeof code === "string" && (UNAVAILABLE_CODES.has(code) || code.startsWith("08"))) return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === "string" && /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|is not queryable/i.test(message);
}

export const RETRY_AFTER_SECONDS = 5;

/** A 503 answer that says what happened and when to retry; never the driver's error text. */
export function databaseUnavailableResponse(json = false): Response {
  const message = "The database is not reachable right now. Try again in a few seconds.";
  return new Response(JSON.stringify(json ? { error: message } : { message }), {
    status: 503,
    headers: { "content-type": "application/json", "retry-after": String(RETRY_AFTER_SECONDS) },
  });
}
