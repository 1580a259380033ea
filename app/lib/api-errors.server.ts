import { isDatabaseUnavailable, RETRY_AFTER_SECONDS } from "./db.server";
import { jsonError } from "./http.server";
import { logger } from "./logger.server";

/**
 * What an /api/v1 caller sees for an error that is not an answer already: 503 with
 * Retry-After when the database is unreachable, else a plain 500 (no stack, no SQL).
 */
export function apiFailure(error: unknown): Response {
  if (error instanceof Response) return error;
  if (isDatabaseUnavailable(error)) return jsonError(503, "database unavailable, retry shortly", {}, { "retry-after": String(RETRY_AFTER_SECONDS) });
  logger.error({ err: error }, "api error");
  return jsonError(500, "internal error");
}
