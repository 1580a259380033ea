import { sql, type Kysely } from "kysely";
import type { Database } from "../../../db/types";

export interface UserMatch {
  user_id: string;
  email: string | null;
  display_name: string | null;
  known: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Finds users by exact id or by email prefix (case-insensitive, uses the lower(email) index).
 * An id seen only in usage data is a user too, so an exact id that has usage is returned.
 */
export async function searchUsers(db: Kysely<Database>, query: string, limit = 20): Promise<UserMatch[]> {
  const q = query.trim();
  if (UUID.test(q)) {
    const id = q.toLowerCase();
    const result = await sql<UserMatch>`
      SELECT ${id}::uuid AS user_id, a.email, a.display_name, true AS known
      FROM (SELECT 1) one LEFT JOIN tokenboard.app_users a ON a.user_id = ${id}::uuid
      WHERE a.user_id IS NOT NULL
         OR EXISTS (SELECT 1 FROM token_usage WHERE user_id = ${id}::uuid)
         OR EXISTS (SELECT 1 FROM tokenboard.token_balances WHERE user_id = ${id}::uuid)`.execute(db);
    return result.rows;
  }
  const pattern = `${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const result = await sql<UserMatch>`
    SELECT user_id, email, display_name, true AS known FROM tokenboard.app_users
    WHERE lower(email) LIKE ${pattern}
    ORDER BY lower(email) LIMIT ${limit}`.execute(db);
  return result.rows;
}
