/**
 * The demo's billing history, in the seed app's shape (public.token_transactions, households,
 * household_members), which start-up adopts into the ledger like any seed database's. Sized from
 * what each balance really consumed in the demo's usage rows, so that after adoption most users
 * hold a comfortable balance, some are near zero and a few are overdrawn.
 *
 * Subscribers get a monthly grant that expires after 30 days (subscription_grant, then
 * renewal_grant), stored negative for some as the seed's writer does; pack buyers purchase
 * token packs (USD mostly, some EUR); some start on a trial grant. A few admin grants and
 * deductions, manual adjustments of each sign, legacy copies of usage rows, and four
 * households whose active members spend the admin's pool.
 */
import { ACTION_TYPES, defaultOverrides } from "../../app/domain/action-types";
import type { DemoUser } from "./profile";
import { Random } from "./random";
import type { UsageRow } from "./usage-rows";

const DAY_MS = 86_400_000;
const MONTH_MS = 30 * DAY_MS;
const AI_TYPES = new Set(ACTION_TYPES.filter((t) => t.category === "ai").map((t) => t.name));
const OVERRIDES = new Map(defaultOverrides().map((o) => [o.actionType as string, o.tokenValue]));
/** The seed's token_action_type names for the usage rows it also copied into token_transactions. */
const LEGACY_COPY_KIND: Record<string, string> = {
  chat_conversation: "chat", vision_refinement: "refinement", blueprint_generation: "blueprint", assessment_scoring: "assessment",
  audio_generation: "audio_generation", transcription: "transcription", image_generation: "image_generation",
};
/** Pack sizes and their prices in cents (USD; the EUR price is the same number). */
const PACKS: readonly [number, number][] = [[250_000, 500], [1_000_000, 1_500], [5_000_000, 6_000], [20_000_000, 20_000], [100_000_000, 90_000]];

/** What each user's successful AI usage would be charged (default overrides), and a few rows to copy. */
export class UsageTally {
  readonly charges = new Map<string, number>();
  readonly samples = new Map<string, UsageRow[]>();

  add(row: UsageRow): void {
    if (!row.success || !AI_TYPES.has(row.action_type)) return;
    this.charges.set(row.user_id, (this.charges.get(row.user_id) ?? 0) + (OVERRIDES.get(row.action_type) ?? row.tokens_used));
    const kept = this.samples.get(row.user_id);
    if (row.action_type in LEGACY_COPY_KIND && (kept?.length ?? 0) < 3) {
      if (kept) kept.push(row);
      else this.samples.set(row.user_id, [row]);
    }
  }
}

export interface DemoTransaction {
  id: string;
  user_id: string;
  action_type: string;
  tokens_used: number;
  created_at: number;
  expires_at: number | null;
  amount_paid_cents: number | null;
  currency: string | null;
  notes: string | null;
  created_by: string | null;
}

export interface DemoHousehold {
  id: string;
  name: string;
  admin_user_id: string;
  created_at: number;
}

export interface DemoMember {
  id: string;
  household_id: string;
  user_id: string;
  role: "admin" | "member";
  allow_shared_tokens: boolean;
  status: "active" | "removed" | "pending";
  joined_at: number;
  removed_at: number | null;
}

export interface DemoBilling {
  transactions: DemoTransaction[];
  households: DemoHousehold[];
  members: DemoMember[];
}

const HOUSEHOLD_NAMES = ["Rivera household", "The Okafor family", "Lindqvist home", "Studio Nakamura"];

/** How generously a balance is funded against what it consumes: most comfortably, some just enough, a few too little. */
function fundingFactor(random: Random): number {
  const roll = random.next();
  if (roll < 0.1) return 0.7 + random.next() * 0.2;
  if (roll < 0.3) return 0.98 + random.next() * 0.06;
  return 1.2 + random.next() * 0.6;
}

export function billingHistory(seed: number, users: readonly DemoUser[], window: { start: number; end: number }, tally: UsageTally): DemoBilling {
  const random = new Random(seed).fork(5);
  const transactions: DemoTransaction[] = [];
  const households: DemoHousehold[] = [];
  const members: DemoMember[] = [];
  const joined = window.start - MONTH_MS;
  // Monthly grants from just before the window until the one still running at its end.
  const firstGrant = window.start - DAY_MS;
  const grants = Math.floor((window.end - firstGrant) / MONTH_MS) + 1;
  const months = Math.max(1, (window.end - window.start) / MONTH_MS);
  const add = (t: Omit<DemoTransaction, "id" | "notes" | "created_by" | "amount_paid_cents" | "currency" | "expires_at"> & Partial<DemoTransaction>) =>
    transactions.push({ id: random.uuid(), notes: null, created_by: null, amount_paid_cents: null, currency: null, expires_at: null, ...t });

  // Households: the admins are among the most active users; their members spend the admin's pool.
  const payer = new Map<string, string>();
  const pooled = new Set<string>();
  const count = users.length >= 20 ? HOUSEHOLD_NAMES.length : 0;
  for (let h = 0; h < count; h++) {
    const admin = users[h * 5] as DemoUser;
    const household: DemoHousehold = { id: random.uuid(), name: HOUSEHOLD_NAMES[h] as string, admin_user_id: admin.user_id, created_at: joined };
    households.push(household);
    members.push({ id: random.uuid(), household_id: household.id, user_id: admin.user_id, role: "admin", allow_shared_tokens: true, status: "active", joined_at: joined, removed_at: null });
    for (let m = 1; m <= 4; m++) {
      const user = users[h * 5 + m] as DemoUser;
      // Each household has two sharing members; the others show the states that do not share.
      const status = m <= 2 ? "active" : h % 2 === 0 && m === 3 ? "removed" : m === 3 ? "pending" : "active";
      const allow = !(m === 4 && h === 1);
      members.push({ id: random.uuid(), household_id: household.id, user_id: user.user_id, role: "member", allow_shared_tokens: allow, status, joined_at: joined, removed_at: status === "removed" ? joined + DAY_MS : null });
      if (status === "active" && allow) {
        payer.set(user.user_id, admin.user_id);
        pooled.add(user.user_id);
      }
    }
  }
  const consumed = new Map<string, number>();
  for (const [userId, charge] of tally.charges) {
    const owner = payer.get(userId) ?? userId;
    consumed.set(owner, (consumed.get(owner) ?? 0) + charge);
  }

  users.forEach((user, index) => {
    if (pooled.has(user.user_id)) return;
    const target = Math.max(50_000, Math.round((consumed.get(user.user_id) ?? 0) * fundingFactor(random)));
    const plan = households.some((h) => h.admin_user_id === user.user_id) ? "subscriber" : random.chance(0.55) ? "subscriber" : random.chance(0.7) ? "packs" : "trial";
    if (plan === "subscriber") {
      const monthly = Math.ceil(target / months / 1_000) * 1_000;
      const negative = random.chance(0.4);
      for (let m = 0; m < grants; m++) {
        const at = firstGrant + m * MONTH_MS;
        add({ user_id: user.user_id, action_type: m === 0 ? "subscription_grant" : "renewal_grant", tokens_used: negative ? -monthly : monthly, created_at: at, expires_at: at + MONTH_MS });
      }
    } else {
      let start = firstGrant;
      let left = target;
      if (plan === "trial") {
        add({ user_id: user.user_id, action_type: "trial_grant", tokens_used: 50_000, created_at: start, expires_at: start + 14 * DAY_MS });
        left = Math.max(0, left - 50_000);
        start += 10 * DAY_MS;
      }
      const [size, cents] = PACKS.find(([s]) => left / s <= 8) ?? (PACKS[PACKS.length - 1] as [number, number]);
      const n = Math.max(1, Math.round(left / size));
      const currency = random.chance(0.15) ? "EUR" : "USD";
      for (let i = 0; i < n; i++) {
        const at = start + Math.floor(((window.end - start) * i) / n);
        add({ user_id: user.user_id, action_type: random.chance(0.8) ? "token_pack_purchase" : "pack_purchase", tokens_used: size, created_at: at, amount_paid_cents: cents, currency, notes: `${size.toLocaleString("en-US")} token pack` });
      }
    }
    const at = () => window.start + Math.floor(random.next() * (window.end - window.start));
    if (index % 20 === 3) add({ user_id: user.user_id, action_type: "admin_grant", tokens_used: 10_000, created_at: at(), notes: "Goodwill: failed image generation" });
    if (index % 25 === 7) add({ user_id: user.user_id, action_type: "admin_deduct", tokens_used: 5_000, created_at: at(), notes: "Chargeback correction" });
    if (index % 40 === 11) add({ user_id: user.user_id, action_type: "manual_adjustment", tokens_used: -2_500, created_at: at(), notes: "Support credit" });
    if (index % 40 === 13) add({ user_id: user.user_id, action_type: "manual_adjustment", tokens_used: 1_000, created_at: at(), notes: "Duplicate credit reversed" });
  });

  // The seed app also copied some usage rows into token_transactions: counted, never charged again.
  users.forEach((user, index) => {
    if (index % 10 !== 0) return;
    for (const row of tally.samples.get(user.user_id) ?? []) {
      add({ user_id: user.user_id, action_type: LEGACY_COPY_KIND[row.action_type] as string, tokens_used: row.tokens_used, created_at: row.created_at });
    }
  });
  return { transactions, households, members };
}
