import type { Kysely } from "kysely";
import type { Database, NewTokenUsage } from "../../db/types";

/** A small deterministic generator (mulberry32), so a failing case can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const TEST_USERS = Array.from({ length: 12 }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`);
const TYPES = ["assessment_scoring", "chat_conversation", "image_generation", "blueprint_generation", "admin_grant"];
const ROUTES = ["/api/assessment/ai-score", "/api/viva/chat", "/lib/services/imageService.ts", null];
const MODELS = ["gpt-4o", "gpt-4o-mini", "dall-e-3"];

/** `count` usage rows with created_at spread over [from, to), random types, routes, models and outcomes. */
export function randomUsageRows(random: () => number, count: number, from: Date, to: Date): NewTokenUsage[] {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  return Array.from({ length: count }, () => {
    const tokens = Math.floor(2 ** (random() * 19));
    return {
      user_id: pick(TEST_USERS),
      action_type: pick(TYPES),
      model_used: pick(MODELS),
      route: pick(ROUTES),
      tokens_used: tokens,
      input_tokens: Math.floor(tokens * 0.7),
      output_tokens: tokens - Math.floor(tokens * 0.7),
      success: random() > 0.1,
      calculated_cost_cents: random() > 0.5 ? Math.round(random() * 10_000) / 100 : null,
      created_at: new Date(from.getTime() + Math.floor(random() * (to.getTime() - from.getTime()))),
    };
  });
}

export async function insertUsage(db: Kysely<Database>, rows: NewTokenUsage[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) await db.insertInto("token_usage").values(rows.slice(i, i + 500)).execute();
}

/** Prices of the models randomUsageRows uses: per token for two, per image for dall-e-3. */
export async function insertTestPricing(db: Kysely<Database>): Promise<void> {
  await db.insertInto("ai_model_pricing").values([
    { model_name: "gpt-4o", input_price_per_1m: 2.5, output_price_per_1m: 10 },
    { model_name: "gpt-4o-mini", input_price_per_1m: 0.15, output_price_per_1m: 0.6 },
    { model_name: "dall-e-3", input_price_per_1m: 0, output_price_per_1m: 0, price_per_unit: 0.04, unit_type: "image" },
  ]).execute();
}
