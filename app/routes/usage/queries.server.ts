import { sql, type Kysely } from "kysely";
import { z } from "zod";
import type { Database } from "../../../db/types";
import { filterText } from "~/domain/inputs";
import type { InstantRange } from "~/models/rollup.server";
import { costCentsSql } from "~/models/cost.server";

export const NO_ROUTE = "(none)";

export const usageFilterSchema = z.object({
  type: filterText(100),
  route: filterText(300),
  model: filterText(200),
  user: z.string().trim().uuid("must be a user id (UUID)").optional(),
  success: z.enum(["true", "false"], { errorMap: () => ({ message: "must be true or false" }) }).optional(),
  cursor: z
    .string()
    .max(200)
    .transform((s, ctx) => {
      try {
        const [at, id] = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as [unknown, unknown];
        const parsed = z.tuple([z.string().max(40), z.string().uuid()]).parse([at, id]);
        return { at: parsed[0], id: parsed[1] };
      } catch {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: "is not a valid page cursor" });
        return z.NEVER;
      }
    })
    .optional(),
});
export type UsageFilter = z.infer<typeof usageFilterSchema>;

export interface UsageRow {
  id: string;
  created_at: string;
  at: string;
  user_id: string;
  action_type: string;
  route: string | null;
  model_used: string;
  tokens_used: number;
  input_tokens: number | null;
  output_tokens: number | null;
  success: boolean;
  error_message: string | null;
  cost_cents: number;
}

export const PAGE_SIZE = 50;

/**
 * Raw rows behind an aggregate, newest first, keyset-paginated on (created_at, id): a page
 * costs the same however deep it is. The cursor carries created_at as text so that
 * microseconds survive the round trip.
 */
export async function usageRows(db: Kysely<Database>, range: InstantRange, filter: UsageFilter): Promise<{ rows: UsageRow[]; next: string | null }> {
  const conditions = [
    sql`u.created_at >= ${range.start}`,
    sql`u.created_at < ${range.end}`,
    filter.type ? sql`u.action_type = ${filter.type}` : null,
    filter.route ? (filter.route === NO_ROUTE ? sql`u.route IS NULL` : sql`u.route = ${filter.route}`) : null,
    filter.model ? sql`u.model_used = ${filter.model}` : null,
    filter.user ? sql`u.user_id = ${filter.user}::uuid` : null,
    filter.success ? sql`u.success = ${filter.success === "true"}` : null,
    filter.cursor ? sql`(u.created_at, u.id) < (${filter.cursor.at}::timestamptz, ${filter.cursor.id}::uuid)` : null,
  ].filter((c) => c !== null);
  const result = await sql<UsageRow>`
    SELECT u.id, u.created_at::text AS at, to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS created_at,
           u.user_id, u.action_type, u.route, u.model_used, u.tokens_used, u.input_tokens, u.output_tokens, u.success, u.error_message,
           ${costCentsSql}::float8 AS cost_cents
    FROM token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
    WHERE ${sql.join(conditions, sql` AND `)}
    ORDER BY u.created_at DESC, u.id DESC
    LIMIT ${PAGE_SIZE + 1}`.execute(db);
  const rows = result.rows.slice(0, PAGE_SIZE);
  const last = rows[rows.length - 1];
  const next = result.rows.length > PAGE_SIZE && last ? Buffer.from(JSON.stringify([last.at, last.id])).toString("base64url") : null;
  return { rows, next };
}
