/**
 * Demo ledger history per user, consistent the way the ledger keeps it: each entry's
 * balance_after is the running balance, the final balance is the sum of the amounts and
 * never negative. Deductions come before expiring grants, so they are paid from permanent
 * tokens and every expiring grant still has all of its amount `remaining` (app/domain/ledger.ts).
 */
import type { DemoUser } from "./profile";
import { Random } from "./random";

export interface DemoLedgerEntry {
  user_id: string;
  kind: "purchase" | "grant" | "deduct";
  amount: number;
  balance_after: number;
  reason: string;
  idempotency_key: string;
  expires_at: number | null;
  remaining: number | null;
  created_at: number;
}

const PACKS = [10_000, 25_000, 50_000, 100_000, 250_000];
const GRANTS = [1_000, 2_000, 5_000, 10_000];
const DEDUCTS = [500, 1_000, 2_500, 5_000];
const GRANT_REASONS = ["Welcome bonus", "Goodwill: failed image generation", "Beta tester reward", "Referral bonus"];
const DEDUCT_REASONS = ["Chargeback correction", "Duplicate grant reversal", "Manual correction after refund"];
const DAY_MS = 86_400_000;

export function ledgerHistory(seed: number, users: readonly DemoUser[], window: { start: number; end: number }): DemoLedgerEntry[] {
  const random = new Random(seed).fork(4);
  const entries: DemoLedgerEntry[] = [];
  const span = window.end - window.start;
  users.forEach((user, index) => {
    let balance = 0;
    let at = window.start + Math.floor(random.next() * span * 0.3);
    const push = (kind: DemoLedgerEntry["kind"], amount: number, reason: string, expiresAt: number | null = null) => {
      balance += amount;
      entries.push({
        user_id: user.user_id,
        kind,
        amount,
        balance_after: balance,
        reason,
        idempotency_key: `demo-${seed}-${index}-${entries.length}`,
        expires_at: expiresAt,
        remaining: expiresAt === null ? null : amount,
        created_at: at,
      });
      // Later entries come later: a quarter of what is left of the window, at most.
      at += 1 + Math.floor(random.next() * (window.end - at) * 0.25);
    };
    push("purchase", random.pick(PACKS), "Token pack purchase");
    if (random.chance(0.2)) push("purchase", random.pick(PACKS), "Token pack purchase");
    if (random.chance(0.25)) push("deduct", -Math.min(balance, random.pick(DEDUCTS)), random.pick(DEDUCT_REASONS));
    if (random.chance(0.35)) {
      const expires = random.chance(0.5) ? window.end + random.int(14, 120) * DAY_MS : null;
      push("grant", random.pick(GRANTS), random.pick(GRANT_REASONS), expires);
    }
  });
  return entries;
}

/** The balance each user ends with: the last entry's balance_after. */
export function finalBalances(entries: readonly DemoLedgerEntry[]): Map<string, number> {
  const balances = new Map<string, number>();
  for (const entry of entries) balances.set(entry.user_id, entry.balance_after);
  return balances;
}
