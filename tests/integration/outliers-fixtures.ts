/**
 * A small usage history that is normal in every way the outlier rules look at, plus one
 * planted case per rule. Deterministic (seeded), so the expected flags are exact.
 */
import { sql, type Kysely } from "kysely";
import type { Database, NewTokenUsage } from "../../db/types";

export const FIXTURE_START = Date.UTC(2025, 0, 1);
export const FIXTURE_DAYS = 40;
const DAY = 86_400_000;

export const PLANTED = {
  spikeUser: "5b000000-0000-4000-8000-000000000001",
  spikeDay: "2025-02-05",
  aboveRange: { action_type: "chat_conversation", tokens: 12_000, day: "2025-01-20" },
  belowRange: { action_type: "assessment_scoring", tokens: 50, day: "2025-01-21" },
  overrideMismatch: { action_type: "image_generation", tokens: 30, day: "2025-01-22" },
  wrongRoute: { action_type: "chat_conversation", route: "/api/vision/chat", day: "2025-01-23", calls: 3 },
  unregistered: { action_type: "vibrational_analysis", day: "2025-01-24", calls: 5 },
  failureSpike: { action_type: "frequency_flip", day: "2025-02-02", calls: 40, failures: 30 },
} as const;

export const NORMAL_USERS = Array.from({ length: 12 }, (_, i) => `a0000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`);

/** Park–Miller: a tiny seeded generator, enough for reproducible fixtures. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48_271) % 2_147_483_647;
    return state / 2_147_483_647;
  };
}

const NORMAL_CALLS = [
  { action_type: "chat_conversation", route: "/api/viva/chat", min: 2_000, max: 5_000 },
  { action_type: "assessment_scoring", route: "/api/assessment/ai-score", min: 200, max: 500 },
  { action_type: "prompt_suggestions", route: "/api/viva/prompt-suggestions", min: 1_000, max: 2_000 },
  { action_type: "frequency_flip", route: "/api/viva/flip-frequency", min: 500, max: 2_000 },
  { action_type: "image_generation", route: "/lib/services/imageService.ts", min: 25, max: 25 },
  { action_type: "vision_generation", route: "/api/vision/chat", min: 1_000, max: 3_000 },
] as const;

const at = (day: string, hour: number) => new Date(`${day}T${String(hour).padStart(2, "0")}:15:00Z`);

function row(user_id: string, action_type: string, route: string | null, tokens: number, created_at: Date, success = true): NewTokenUsage {
  return { user_id, action_type, route, model_used: "gpt-4o", tokens_used: tokens, success, created_at, error_message: success ? null : "upstream timeout" };
}

export function normalRows(seed = 7): NewTokenUsage[] {
  const next = random(seed);
  const rows: NewTokenUsage[] = [];
  for (let d = 0; d < FIXTURE_DAYS; d += 1) {
    for (const user of NORMAL_USERS) {
      const calls = Math.floor(next() * 4);
      for (let c = 0; c < calls; c += 1) {
        const kind = NORMAL_CALLS[Math.floor(next() * NORMAL_CALLS.length)]!;
        const tokens = kind.min + Math.floor(next() * (kind.max - kind.min + 1));
        rows.push(row(user, kind.action_type, kind.route, tokens, new Date(FIXTURE_START + d * DAY + Math.floor(next() * DAY)), next() > 0.02));
      }
    }
    // The spike user: three chats every day, about 10,000 tokens.
    for (let c = 0; c < 3; c += 1) {
      rows.push(row(PLANTED.spikeUser, "chat_conversation", "/api/viva/chat", 3_000 + Math.floor(next() * 800), new Date(FIXTURE_START + d * DAY + (c + 1) * 3_600_000)));
    }
  }
  return rows;
}

export function plantedRows(): NewTokenUsage[] {
  const p = PLANTED;
  const u = NORMAL_USERS[0]!;
  const rows = [
    row(u, p.aboveRange.action_type, "/api/viva/chat", p.aboveRange.tokens, at(p.aboveRange.day, 10)),
    row(u, p.belowRange.action_type, "/api/assessment/ai-score", p.belowRange.tokens, at(p.belowRange.day, 10)),
    row(u, p.overrideMismatch.action_type, "/lib/services/imageService.ts", p.overrideMismatch.tokens, at(p.overrideMismatch.day, 10)),
    ...Array.from({ length: p.wrongRoute.calls }, (_, i) => row(NORMAL_USERS[i]!, p.wrongRoute.action_type, p.wrongRoute.route, 3_000, at(p.wrongRoute.day, 9 + i))),
    ...Array.from({ length: p.unregistered.calls }, (_, i) => row(NORMAL_USERS[i]!, p.unregistered.action_type, "/api/viva/vibes", 700, at(p.unregistered.day, 8 + i))),
    ...Array.from({ length: p.failureSpike.calls }, (_, i) =>
      row(NORMAL_USERS[i % NORMAL_USERS.length]!, p.failureSpike.action_type, "/api/viva/flip-frequency", 900, at(p.failureSpike.day, i % 24), i >= p.failureSpike.failures)),
    // Two blueprints in one day: about 40× the spike user's usual day, every call in range.
    row(p.spikeUser, "blueprint_generation", "/api/vibe-assistant/generate-blueprint", 200_000, at(p.spikeDay, 14)),
    row(p.spikeUser, "blueprint_generation", "/api/vibe-assistant/generate-blueprint", 210_000, at(p.spikeDay, 16)),
  ];
  return rows;
}

/** An adopted database may hold unregistered types: lift the CHECK constraint like one would. */
export async function allowUnregisteredTypes(db: Kysely<Database>): Promise<void> {
  await sql`ALTER TABLE public.token_usage DROP CONSTRAINT IF EXISTS token_usage_action_type_check`.execute(db);
}

export async function insertUsage(db: Kysely<Database>, rows: NewTokenUsage[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) await db.insertInto("token_usage").values(rows.slice(i, i + 500)).execute();
}
