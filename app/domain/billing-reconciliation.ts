/**
 * Why tokenboard's balance differs from what the seed app's two balance functions say
 * (shared/reference/seed-billing-schema.sql). The functions are computed in SQL from their
 * documented rules, read literally:
 *  - calculate_token_balance: positive grants of admin_grant, subscription_grant, trial_grant and
 *    token_pack_purchase (expired or not) − tokens_used of the user's successful token_usage rows
 *    of non-ledger types − |tokens_used| of admin_deduct rows and of every negative row; ≥ 0.
 *  - get_user_token_balance: positive, unexpired grants of all six grant kinds − the same usage of
 *    the pool (the user, or its household admin, and every active member sharing tokens); ≥ 0.
 * Each difference is split into named parts whose tokens add up to tokenboard − function.
 */
import { z } from "zod";

export const RECONCILIATION_SORTS = ["user", "balance", "calculate", "get", "difference"] as const;
export type ReconciliationSort = (typeof RECONCILIATION_SORTS)[number];
/** differs: tokenboard disagrees with either function; overdrawn: tokenboard's balance below zero; pool: in a shared household. */
export const RECONCILIATION_SHOWS = ["differs", "all", "overdrawn", "pool"] as const;
export type ReconciliationShow = (typeof RECONCILIATION_SHOWS)[number];

/** The page's and the CSV's URL parameters. */
export const reconciliationParamsSchema = z.object({
  sort: z.enum(RECONCILIATION_SORTS, { errorMap: () => ({ message: `must be one of ${RECONCILIATION_SORTS.join(", ")}` }) }).default("difference"),
  dir: z.enum(["asc", "desc"], { errorMap: () => ({ message: "must be asc or desc" }) }).default("desc"),
  show: z.enum(RECONCILIATION_SHOWS, { errorMap: () => ({ message: `must be one of ${RECONCILIATION_SHOWS.join(", ")}` }) }).default("differs"),
  user: z.string().trim().toLowerCase().max(36, "must be at most 36 characters").regex(/^[0-9a-f-]*$/, "must be a user id or the start of one (hex digits and dashes)")
    .optional().transform((v) => v || null),
  page: z.coerce.number({ invalid_type_error: "must be a page number" }).int("must be a page number").min(1, "must be 1 or more").max(1_000_000, "must be at most 1,000,000").default(1),
});
export type ReconciliationParams = z.output<typeof reconciliationParamsSchema>;

/** Per user, the sums the explanation needs (token_transactions, ledger, token_usage). */
export interface ReconciliationParts {
  balance: number;
  /** The household admin whose pool get_user_token_balance shows, when not the user. */
  poolOwner: string | null;
  calculateRaw: number;
  getRaw: number;
  /** token_transactions: grant kinds stored negative (|sum|), renewal_grant + pack_purchase stored positive, manual_adjustment grants / deducts, admin_deduct (|sum|). */
  negativeGrants: number;
  uncountedKinds: number;
  manualGrants: number;
  manualDeducts: number;
  adminDeducts: number;
  /** Positive-stored grants of the six kinds that have expired. */
  expiredGrants: number;
  /** tokenboard's expiries of adopted grants stored positive / negative. */
  expiredPositive: number;
  expiredNegative: number;
  /** Net of entries made in tokenboard itself (staff adjustments and their expiries). */
  nativeNet: number;
  /** tokens_used of the user's own successful usage, and of the pool get_user_token_balance subtracts. */
  usageOwn: number;
  usagePool: number;
  /** tokenboard's charges: on this balance for the user's own usage, for members' usage; for the user's usage on another balance (a pool). */
  chargedSelf: number;
  chargedMembers: number;
  chargedElsewhere: number;
}

export interface DifferenceReason {
  reason: string;
  /** tokenboard's balance minus the function's, due to this reason. */
  tokens: number;
}

const n = (v: number) => v.toLocaleString("en-US");

function nonZero(reasons: DifferenceReason[]): DifferenceReason[] {
  return reasons.filter((r) => r.tokens !== 0);
}

function usageReasons(p: ReconciliationParts, functionUsage: number): DifferenceReason[] {
  return [
    { reason: `usage priced differently: the function subtracts tokens_used of every successful call (${n(p.usageOwn)}); tokenboard charges AI types at their override (${n(p.chargedSelf + p.chargedElsewhere)})`, tokens: p.usageOwn - p.chargedSelf - p.chargedElsewhere },
    { reason: `pool: tokenboard charges this user's usage to the household admin (${n(p.chargedElsewhere)}) and members' usage to this balance (${n(p.chargedMembers)})`, tokens: functionUsage - p.usageOwn + p.chargedElsewhere - p.chargedMembers },
  ];
}

function floorReason(raw: number): DifferenceReason {
  return { reason: `floored at 0: the function never shows an overdraft (it computes ${n(raw)})`, tokens: Math.min(0, raw) };
}

export function calculateReasons(p: ReconciliationParts): DifferenceReason[] {
  return nonZero([
    { reason: `negative-stored grant: tokenboard grants ${n(p.negativeGrants)}, the function subtracts it as a negative transaction`, tokens: 2 * p.negativeGrants },
    { reason: `grant kinds the function does not count (renewal_grant, pack_purchase): ${n(p.uncountedKinds)}`, tokens: p.uncountedKinds },
    { reason: `manual_adjustment grant: tokenboard grants ${n(p.manualGrants)}, the function subtracts it as a negative transaction`, tokens: 2 * p.manualGrants },
    { reason: `deduction ignored: manual_adjustment deductions (${n(p.manualDeducts)})`, tokens: -p.manualDeducts },
    { reason: `expired grant counted: tokenboard removed ${n(p.expiredPositive + p.expiredNegative)} tokens left at expiry; the function counts expired grants`, tokens: -(p.expiredPositive + p.expiredNegative) },
    ...usageReasons(p, p.usageOwn),
    { reason: `entries made in tokenboard (not in token_transactions)`, tokens: p.nativeNet },
    floorReason(p.calculateRaw),
  ]);
}

export function getReasons(p: ReconciliationParts): DifferenceReason[] {
  if (p.poolOwner) {
    return nonZero([{ reason: `pool: the function shows the household pool of ${p.poolOwner} (the admin's grants minus every active member's usage); tokenboard charges this user's usage to that balance`, tokens: p.balance - Math.max(0, p.getRaw) }]);
  }
  return nonZero([
    { reason: `usage paid twice: expired grants paid ${n(p.expiredGrants - p.expiredPositive)} tokens; the function drops those grants but still subtracts that usage`, tokens: p.expiredGrants - p.expiredPositive },
    { reason: `negative-stored grant ignored: ${n(p.negativeGrants - p.expiredNegative)} tokens of it are still in tokenboard's balance`, tokens: p.negativeGrants - p.expiredNegative },
    { reason: `manual_adjustment grant ignored: ${n(p.manualGrants)}`, tokens: p.manualGrants },
    { reason: `deduction ignored: admin_deduct and manual_adjustment deductions (${n(p.adminDeducts + p.manualDeducts)})`, tokens: -(p.adminDeducts + p.manualDeducts) },
    ...usageReasons(p, p.usagePool),
    { reason: `entries made in tokenboard (not in token_transactions)`, tokens: p.nativeNet },
    floorReason(p.getRaw),
  ]);
}
