/**
 * Pure rules of adopting the seed app's billing history: which token_transactions row becomes
 * which ledger movement, and the replay that turns one balance's movements, in time order, into
 * ledger entries under the consumption rules of app/domain/ledger.ts (lapsed grants expire
 * first, soonest-expiring grant spent first, a new grant pays the overdraft first).
 */
import { initialRemaining, planDebit, type OpenGrant } from "./ledger";

/** token_transactions kinds that grant tokens; the purchases among them become 'purchase' entries. */
export const SEED_GRANT_KINDS = ["subscription_grant", "renewal_grant", "trial_grant", "admin_grant", "pack_purchase", "token_pack_purchase"] as const;
export const SEED_PURCHASE_KINDS = ["pack_purchase", "token_pack_purchase"] as const;
/** Kinds that are a legacy copy of token_usage: counted in the reconciliation, never charged again. */
export const SEED_USAGE_COPY_KINDS = ["chat", "refinement", "blueprint", "assessment", "audio_generation", "transcription", "image_generation"] as const;

export interface SeedTransaction {
  id: string;
  actionType: string;
  tokensUsed: number;
  createdAt: Date;
  expiresAt: Date | null;
  amountPaidCents: number | null;
  currency: string | null;
  notes: string | null;
}

export type ReplayEvent =
  | { type: "credit"; at: Date; kind: "grant" | "purchase"; amount: number; expiresAt: Date | null; sourceRef: string; reason: string; amountPaidCents: number | null; currency: string | null }
  | { type: "deduct"; at: Date; amount: number; sourceRef: string; reason: string }
  | { type: "charge"; at: Date; amount: number; consumerId: string; sourceRef: string; reason: string };

export function sourceRefOf(transactionId: string): string {
  return `token_transactions:${transactionId}`;
}

/** The ledger movement of one seed row, or null for a legacy usage copy (or a zero row). */
export function eventOfTransaction(row: SeedTransaction): ReplayEvent | null {
  const amount = Math.abs(row.tokensUsed);
  if (amount === 0) return null;
  const sourceRef = sourceRefOf(row.id);
  const note = row.notes?.trim() ? `: ${row.notes.trim()}` : "";
  if ((SEED_GRANT_KINDS as readonly string[]).includes(row.actionType) || (row.actionType === "manual_adjustment" && row.tokensUsed < 0)) {
    const purchase = (SEED_PURCHASE_KINDS as readonly string[]).includes(row.actionType);
    return {
      type: "credit", at: row.createdAt, kind: purchase ? "purchase" : "grant", amount, expiresAt: row.expiresAt, sourceRef,
      reason: `adopted ${row.actionType}${note}`,
      amountPaidCents: purchase ? row.amountPaidCents : null,
      currency: purchase && row.amountPaidCents !== null ? (row.currency ?? "USD") : null,
    };
  }
  if (row.actionType === "admin_deduct" || row.actionType === "manual_adjustment") {
    return { type: "deduct", at: row.createdAt, amount, sourceRef, reason: `adopted ${row.actionType}${note}` };
  }
  return null;
}

export interface ReplayGrant extends OpenGrant {
  /** Index of the entry in the replay's output, or null for a grant already in the ledger. */
  entryIndex: number | null;
}

export interface ReplayState {
  balance: number;
  /** Expiring grants with tokens left (existing ones carry their ledger id). */
  grants: ReplayGrant[];
}

export interface ReplayEntry {
  kind: "grant" | "purchase" | "deduct" | "usage" | "expiry";
  amount: number;
  balanceAfter: number;
  createdAt: Date;
  reason: string;
  sourceRef: string | null;
  expiresAt: Date | null;
  /** What is left of an expiring grant at the end of the replay; null otherwise. */
  remaining: number | null;
  forced: boolean;
  amountPaidCents: number | null;
  currency: string | null;
  consumerId: string | null;
  /** On an expiry: the grant it ends, as an output index or an existing ledger id. */
  expires: { entryIndex: number } | { ledgerId: number } | null;
}

export interface ReplayResult {
  entries: ReplayEntry[];
  balance: number;
  /** Existing grants whose remaining changed: ledger id → new remaining. */
  existingRemaining: Map<number, number>;
}

const ORDER: Record<ReplayEvent["type"], number> = { credit: 0, deduct: 1, charge: 2 };

/** Time order; at the same instant a credit comes first, so it pays a debit of that instant. */
export function sortEvents(events: readonly ReplayEvent[]): ReplayEvent[] {
  return [...events].sort((a, b) => a.at.getTime() - b.at.getTime() || ORDER[a.type] - ORDER[b.type] || (a.sourceRef < b.sourceRef ? -1 : a.sourceRef > b.sourceRef ? 1 : 0));
}

/** First id for grants the replay creates: after any real ledger id, so ties favour existing (older) grants. */
const NEW_GRANT_ID_BASE = 2 ** 50;

/**
 * One balance's history replayed from `start` (zero, or the ledger's state when tokenboard already
 * kept this balance): each event after the expiry of what lapsed at or before it; then what lapsed
 * up to `asOf`. Usage charges and seed deductions are never refused (they happened); an entry
 * left below zero is marked forced, as the ledger's CHECK requires.
 */
export function replayBalance(events: readonly ReplayEvent[], asOf: Date, start: ReplayState = { balance: 0, grants: [] }): ReplayResult {
  const entries: ReplayEntry[] = [];
  const existingRemaining = new Map<number, number>();
  let balance = start.balance;
  let grants: ReplayGrant[] = start.grants.map((g) => ({ ...g }));

  const sync = (grant: ReplayGrant) => {
    if (grant.entryIndex === null) existingRemaining.set(grant.id, grant.remaining);
    else entries[grant.entryIndex]!.remaining = grant.remaining;
  };
  const push = (entry: Omit<ReplayEntry, "balanceAfter" | "forced">) => {
    balance += entry.amount;
    entries.push({ ...entry, balanceAfter: balance, forced: balance < 0 });
    return entries.length - 1;
  };
  // An expiry is dated at its expires_at, but never before the event that created the grant.
  let lastEventAt = -Infinity;
  const expireThrough = (at: Date) => {
    const due = grants.filter((g) => g.expiresAt.getTime() <= at.getTime()).sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime() || a.id - b.id);
    for (const grant of due) {
      const left = grant.remaining;
      grant.remaining = 0;
      sync(grant);
      if (left > 0) {
        push({
          kind: "expiry", amount: -left, createdAt: new Date(Math.max(grant.expiresAt.getTime(), lastEventAt)), reason: "expired: what was left of the grant at its expiry", sourceRef: null,
          expiresAt: null, remaining: null, amountPaidCents: null, currency: null, consumerId: null,
          expires: grant.entryIndex === null ? { ledgerId: grant.id } : { entryIndex: grant.entryIndex },
        });
      }
    }
    grants = grants.filter((g) => !due.includes(g));
  };
  const debit = (amount: number) => {
    for (const { id, take } of planDebit(grants, amount)) {
      const grant = grants.find((g) => g.id === id)!;
      grant.remaining -= take;
      sync(grant);
    }
  };

  for (const event of sortEvents(events)) {
    expireThrough(event.at);
    lastEventAt = event.at.getTime();
    if (event.type === "credit") {
      const remaining = event.expiresAt ? initialRemaining(balance, grants, event.amount) : null;
      const index = push({
        kind: event.kind, amount: event.amount, createdAt: event.at, reason: event.reason, sourceRef: event.sourceRef, expiresAt: event.expiresAt,
        remaining, amountPaidCents: event.amountPaidCents, currency: event.currency, consumerId: null, expires: null,
      });
      if (event.expiresAt) grants.push({ id: NEW_GRANT_ID_BASE + index, remaining: remaining ?? 0, expiresAt: event.expiresAt, entryIndex: index });
      // A grant that had already lapsed when it was given expires at once.
      if (event.expiresAt && event.expiresAt.getTime() <= event.at.getTime()) expireThrough(event.at);
      continue;
    }
    debit(event.amount);
    push({
      kind: event.type === "deduct" ? "deduct" : "usage", amount: -event.amount, createdAt: event.at, reason: event.reason, sourceRef: event.sourceRef,
      expiresAt: null, remaining: null, amountPaidCents: null, currency: null, consumerId: event.type === "charge" ? event.consumerId : null, expires: null,
    });
  }
  expireThrough(asOf);
  return { entries, balance, existingRemaining };
}
