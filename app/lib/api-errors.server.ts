import { jsonError } from "./http.server";
import { logger } from "./logger.server";

const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "57P01", "57P02", "57P03", "53300"]);

/** The database is down or refusing connections (as opposed to a bug in a query). */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && (UNAVAILABLE_CODES.has(e.code) || e.code.startsWith("08"))) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED/i.test(e.message ?? "");
}

/**
 * What an /api/v1 caller sees for an error that is not an answer already: 503 with
 * Retry-After when the database is unreachable, else a plain 500 (no stack, no SQL).
 */
export function apiFailure(error: unknown): Response {
  if (error instanceof Response) return error;
  if (isDatabaseUnavailable(error)) return jsonError(503, "database unavailable, retry shortly", {}, { "retry-after": "5" });
  logger.error({ err: error }, "api error");
  return jsonError(500, "internal error");
}
