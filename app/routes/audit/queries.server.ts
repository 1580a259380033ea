import { sql, type Kysely } from "kysely";
import type { AuditEntry, Database } from "../../../db/types";

export interface AuditFilter {
  start: Date;
  end: Date;
  /** Prefix of the actor's label (email or api-key name), case-insensitive. */
  actor?: string;
  /** Exact action, or a family with a trailing dot ("ledger."). */
  action?: string;
  /** Matches the target id, or the target type. */
  target?: string;
}

/** Actions tokenboard writes, offered as suggestions in the filter. */
export const KNOWN_AUDIT_ACTIONS = [
  "auth.login", "auth.login_failed", "auth.logout", "ledger.", "ledger.grant", "ledger.deduct", "ledger.expiry", "ledger.usage",
  "override.update", "outlier.acknowledge", "staff.", "staff.create", "staff.role", "staff.disable", "staff.enable",
  "api_key.", "api_key.create", "api_key.revoke", "api_key.rotate",
];

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export async function listAudit(db: Kysely<Database>, filter: AuditFilter, page: number, pageSize: number, ascending: boolean): Promise<{ rows: AuditEntry[]; total: number }> {
  let query = db.selectFrom("audit_log").where("at", ">=", filter.start).where("at", "<", filter.end);
  if (filter.actor) query = query.where(sql<string>`lower(actor_label)`, "like", `${escapeLike(filter.actor.toLowerCase())}%`);
  if (filter.action) query = filter.action.endsWith(".") ? query.where("action", "like", `${escapeLike(filter.action)}%`) : query.where("action", "=", filter.action);
  if (filter.target) {
    const target = filter.target;
    query = query.where((eb) => eb.or([eb("target_id", "=", target), eb("target_type", "=", target)]));
  }
  const direction = ascending ? "asc" : "desc";
  const [rows, count] = await Promise.all([
    query.selectAll().orderBy("at", direction).orderBy("id", direction).limit(pageSize).offset((page - 1) * pageSize).execute(),
    query.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
  ]);
  return { rows, total: count.n };
}
