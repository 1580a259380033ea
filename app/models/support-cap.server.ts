/**
 * Support's rolling cap: what one support member may grant plus deduct for one user in any
 * 24 hours (issue 23: twenty 10,000-token grants in a row all passed the per-adjustment limit).
 * Checked inside the adjustment's transaction, under the user's ledger lock, so two concurrent
 * adjustments cannot both fit in what is left.
 */
import { sql, type Transaction } from "kysely";
import type { Database } from "../../db/types";
import { supportCapMessage } from "../domain/ledger";

export interface SupportCap {
  staffId: string;
  /** Tokens per (staff member, user) in any rolling 24 hours. */
  limit: number;
}

export interface SupportCapRefusal {
  status: "cap_exceeded";
  message: string;
  remaining: number;
}

/** Call with the user's ledger lock held: the refusal, or null when `amount` fits in what is left. */
export async function checkSupportCap(trx: Transaction<Database>, cap: SupportCap, userId: string, amount: number): Promise<SupportCapRefusal | null> {
  const result = await sql<{ used: string }>`
    SELECT COALESCE(sum(abs(amount)), 0)::bigint AS used FROM ledger_entries
    WHERE user_id = ${userId} AND actor_id = ${cap.staffId} AND kind IN ('grant', 'deduct') AND created_at > now() - interval '24 hours'`.execute(trx);
  const used = Number(result.rows[0]?.used ?? 0);
  const remaining = Math.max(0, cap.limit - used);
  return amount > remaining ? { status: "cap_exceeded", message: supportCapMessage(cap.limit, remaining, amount), remaining } : null;
}

/** The cap an adjustment by this staff member is held to: support only, admins are exempt. */
export function supportCapFor(staff: { id: string; role: string }, limit: number): SupportCap | undefined {
  return staff.role === "support" ? { staffId: staff.id, limit } : undefined;
}
