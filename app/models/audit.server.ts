import type { Kysely, Transaction } from "kysely";
import type { Database } from "../../db/types";

export interface Actor {
  id: string | null;
  label: string;
  ip?: string | null;
}

export const SYSTEM_ACTOR: Actor = { id: null, label: "system" };

export interface AuditInput {
  action: string;
  targetType: string;
  targetId?: string | null;
  before?: unknown;
  after?: unknown;
  reason?: string | null;
}

/** Appends one audit row; call it with the transaction of the write it records. */
export async function recordAudit(db: Kysely<Database> | Transaction<Database>, actor: Actor, input: AuditInput): Promise<void> {
  await db
    .insertInto("audit_log")
    .values({
      actor_id: actor.id,
      actor_label: actor.label,
      action: input.action,
      target_type: input.targetType,
      target_id: input.targetId ?? null,
      before: input.before === undefined ? null : JSON.stringify(input.before),
      after: input.after === undefined ? null : JSON.stringify(input.after),
      reason: input.reason ?? null,
      ip: actor.ip ?? null,
    })
    .execute();
}
