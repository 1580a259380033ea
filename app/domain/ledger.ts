/**
 * Pure rules of the token ledger: what an adjustment may be, who may make it, and how a
 * debit is spread over grants that expire.
 *
 * A user's balance has two parts: tokens of grants that expire (each grant keeps its
 * `remaining`) and "permanent" tokens (purchases, grants without expiry). Debits consume
 * the grants that expire soonest first, then the permanent part, so tokens that would be
 * lost are used before tokens that would not. A grant that expires while tokens of it are
 * left gets an expiry entry that removes exactly what is left. When a forced deduction has
 * made the permanent part negative, the next expiring grant first pays that debt, so an
 * expiry can never push the balance below zero.
 */
import { z } from "zod";
import type { StaffRole } from "../../db/types";
import { tokenAmountSchema } from "./inputs";
import { STORABLE_TEXT, UNSTORABLE_MESSAGE } from "./storable-text";

export const STAFF_ADJUSTMENT_KINDS = ["grant", "deduct"] as const;
export type StaffAdjustmentKind = (typeof STAFF_ADJUSTMENT_KINDS)[number];

/** Large enough for any real adjustment; small enough that sums stay exact in JS numbers. */
export const MAX_ADJUSTMENT = 1_000_000_000;

export const amountSchema = tokenAmountSchema(MAX_ADJUSTMENT);

export const reasonSchema = z
  .string({ required_error: "is required: say why the balance changes" })
  .trim()
  .min(3, "is required: say why the balance changes (at least 3 characters)")
  .max(500, "must be at most 500 characters")
  .regex(STORABLE_TEXT, UNSTORABLE_MESSAGE);

export const idempotencyKeySchema = z
  .string({ required_error: "is required" })
  .trim()
  .min(8, "must be at least 8 characters")
  .max(200, "must be at most 200 characters")
  .regex(STORABLE_TEXT, UNSTORABLE_MESSAGE);

/** The body of POST /api/v1/ledger (the Contract). */
export const ledgerRequestSchema = z.object({
  user_id: z.string({ required_error: "is required" }).uuid("must be a UUID"),
  amount: z.number({ required_error: "is required", invalid_type_error: "must be a number" }).int("must be a whole number").positive("must be greater than 0").max(MAX_ADJUSTMENT, `must be at most ${MAX_ADJUSTMENT}`),
  kind: z.enum(STAFF_ADJUSTMENT_KINDS, { errorMap: () => ({ message: 'must be "grant" or "deduct"' }) }),
  reason: reasonSchema,
  idempotency_key: idempotencyKeySchema,
});
export type LedgerRequest = z.infer<typeof ledgerRequestSchema>;

export interface OpenGrant {
  id: number;
  remaining: number;
  expiresAt: Date;
}

export interface GrantConsumption {
  id: number;
  take: number;
}

/** Grants in the order debits consume them: soonest expiry first, then oldest. */
export function consumptionOrder(grants: readonly OpenGrant[]): OpenGrant[] {
  return [...grants].sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime() || a.id - b.id);
}

/** How much of each open grant a debit of `amount` uses; the rest comes from permanent tokens. */
export function planDebit(grants: readonly OpenGrant[], amount: number): GrantConsumption[] {
  const plan: GrantConsumption[] = [];
  let left = amount;
  for (const grant of consumptionOrder(grants)) {
    if (left <= 0) break;
    const take = Math.min(grant.remaining, left);
    if (take > 0) plan.push({ id: grant.id, take });
    left -= take;
  }
  return plan;
}

/**
 * The `remaining` a new expiring grant starts with: its amount minus whatever debt of the
 * permanent part it pays first.
 */
export function initialRemaining(balance: number, grants: readonly OpenGrant[], amount: number): number {
  const expiring = grants.reduce((sum, g) => sum + g.remaining, 0);
  const debt = Math.max(0, expiring - balance);
  return amount - Math.min(amount, debt);
}

export type AdjustmentCheck = { ok: true } | { ok: false; status: 403; message: string };

/**
 * Whether a staff role may make this adjustment. Support is capped per adjustment (ask an
 * admin above it); only admins may force a balance below zero; analysts never adjust.
 */
export function checkStaffAdjustment(role: StaffRole, amount: number, supportLimit: number, force = false): AdjustmentCheck {
  if (role === "analyst") return { ok: false, status: 403, message: "Analysts cannot change balances. Ask support or an admin." };
  if (force && role !== "admin") return { ok: false, status: 403, message: "Only an admin can force a balance below zero." };
  if (role === "support" && amount > supportLimit) {
    return {
      ok: false,
      status: 403,
      message: `Support can adjust at most ${supportLimit.toLocaleString("en-US")} tokens at a time. Ask an admin to make this ${amount.toLocaleString("en-US")}-token adjustment.`,
    };
  }
  return { ok: true };
}

/** Support's rolling cap per user (app/models/support-cap.server.ts): the limit and what is left. */
export function supportCapMessage(limit: number, remaining: number, amount: number): string {
  const n = (v: number) => v.toLocaleString("en-US");
  return `Support can adjust at most ${n(limit)} tokens per user in any 24 hours; ${n(remaining)} left for this user, so ${n(amount)} cannot be adjusted. Adjust at most ${n(remaining)}, or ask an admin.`;
}

/** The signed ledger amount of a staff adjustment. */
export function signedAmount(kind: StaffAdjustmentKind, amount: number): number {
  return kind === "grant" ? amount : -amount;
}

/** What the balance would be after the adjustment, for the confirmation step. */
export function balanceAfter(balance: number, kind: StaffAdjustmentKind, amount: number): number {
  return balance + signedAmount(kind, amount);
}

export function insufficientMessage(balance: number, amount: number): string {
  return `Insufficient balance: the user has ${balance.toLocaleString("en-US")} tokens, so ${amount.toLocaleString("en-US")} cannot be deducted. Deduct at most ${Math.max(0, balance).toLocaleString("en-US")}, or ask an admin to force it with a reason.`;
}
