/**
 * What the demo app's traffic looks like: how often each action type is called, by which
 * models, how tokens split into input and output, and what the models cost. Pure data and
 * pure functions; the generator turns them into rows.
 */
import { ACTION_TYPES, type ActionTypeDefinition } from "../../app/domain/action-types";
import { clippedLogNormal, type Random } from "./random";

export interface ModelPrice {
  model_name: string;
  model_family: string;
  input_price_per_1m: number;
  output_price_per_1m: number;
  price_per_unit: number | null;
  unit_type: string | null;
}

/** OpenAI list prices (USD) at the time of writing; per-unit prices are per image or per audio second. */
export const DEMO_PRICING: readonly ModelPrice[] = [
  { model_name: "gpt-4o", model_family: "gpt-4o", input_price_per_1m: 2.5, output_price_per_1m: 10, price_per_unit: null, unit_type: null },
  { model_name: "gpt-4o-mini", model_family: "gpt-4o", input_price_per_1m: 0.15, output_price_per_1m: 0.6, price_per_unit: null, unit_type: null },
  { model_name: "gpt-4.1", model_family: "gpt-4.1", input_price_per_1m: 2, output_price_per_1m: 8, price_per_unit: null, unit_type: null },
  { model_name: "o3-mini", model_family: "o3", input_price_per_1m: 1.1, output_price_per_1m: 4.4, price_per_unit: null, unit_type: null },
  { model_name: "dall-e-3", model_family: "dall-e", input_price_per_1m: 0, output_price_per_1m: 0, price_per_unit: 0.04, unit_type: "image" },
  { model_name: "tts-1", model_family: "tts", input_price_per_1m: 0, output_price_per_1m: 0, price_per_unit: 0.000225, unit_type: "second" },
  { model_name: "whisper-1", model_family: "whisper", input_price_per_1m: 0, output_price_per_1m: 0, price_per_unit: 0.0001, unit_type: "second" },
];

/** Ledger-category rows are bookkeeping, not model calls; the seed app records them with this model. */
export const LEDGER_MODEL = "system";

interface TypeProfile {
  /** Relative call frequency. */
  weight: number;
  models: readonly (readonly [model: string, weight: number])[];
  /** Share of tokens that are prompt (input) tokens, for token-unit types. */
  inputShare: readonly [min: number, max: number];
  /** Shifts the log-normal towards the top (+) or bottom (-) of the expected range. */
  skew?: number;
}

const TEXT_CHEAP = [["gpt-4o-mini", 6], ["gpt-4o", 3], ["gpt-4.1", 1]] as const;
const TEXT_LONG = [["gpt-4o", 5], ["gpt-4.1", 3], ["o3-mini", 2]] as const;

// Chat dominates, long documents are rare: the mix of a coaching app like the seed app.
const PROFILES: Record<string, TypeProfile> = {
  chat_conversation: { weight: 400, models: TEXT_CHEAP, inputShare: [0.6, 0.85] },
  prompt_suggestions: { weight: 120, models: [["gpt-4o-mini", 1]], inputShare: [0.7, 0.9] },
  assessment_scoring: { weight: 90, models: [["gpt-4o-mini", 1]], inputShare: [0.75, 0.9] },
  audio_generation: { weight: 90, models: [["tts-1", 1]], inputShare: [0, 0] },
  vision_generation: { weight: 70, models: TEXT_LONG, inputShare: [0.4, 0.6] },
  image_generation: { weight: 60, models: [["dall-e-3", 1]], inputShare: [0, 0] },
  frequency_flip: { weight: 50, models: TEXT_CHEAP, inputShare: [0.5, 0.7] },
  transcription: { weight: 40, models: [["whisper-1", 1]], inputShare: [0, 0] },
  life_vision_category_summary: { weight: 30, models: TEXT_LONG, inputShare: [0.7, 0.85], skew: -0.1 },
  vision_refinement: { weight: 20, models: TEXT_LONG, inputShare: [0.6, 0.8], skew: -0.1 },
  life_vision_master_assembly: { weight: 6, models: TEXT_LONG, inputShare: [0.7, 0.85] },
  blueprint_generation: { weight: 3, models: [["gpt-4.1", 2], ["o3-mini", 1]], inputShare: [0.5, 0.7] },
  admin_grant: { weight: 1, models: [[LEDGER_MODEL, 1]], inputShare: [0, 0] },
  admin_deduct: { weight: 0.5, models: [[LEDGER_MODEL, 1]], inputShare: [0, 0] },
};

/** A type added to the registry later still gets demo rows: rare, cheap model, inside its range. */
const FALLBACK_PROFILE: TypeProfile = { weight: 5, models: [["gpt-4o-mini", 1]], inputShare: [0.6, 0.8] };

export function profileFor(type: ActionTypeDefinition): TypeProfile {
  if (type.category === "ledger") return PROFILES[type.name] ?? { ...FALLBACK_PROFILE, weight: 0.5, models: [[LEDGER_MODEL, 1]] };
  return PROFILES[type.name] ?? FALLBACK_PROFILE;
}

/** Every registered type with its weight: the generator draws types from this list. */
export function typeMix(types: readonly ActionTypeDefinition[] = ACTION_TYPES): { type: ActionTypeDefinition; weight: number }[] {
  return types.map((type) => ({ type, weight: profileFor(type).weight }));
}

export function pickModel(random: Random, type: ActionTypeDefinition): string {
  const models = profileFor(type).models;
  const total = models.reduce((sum, [, w]) => sum + w, 0);
  let target = random.next() * total;
  for (const [model, weight] of models) {
    target -= weight;
    if (target < 0) return model;
  }
  return (models[models.length - 1] as readonly [string, number])[0];
}

/** Variable-range (ledger) amounts: round numbers an admin would type. */
const ADJUSTMENT_AMOUNTS = [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000];

/** tokens_used for one normal call of this type: inside its expected range. */
export function normalTokens(random: Random, type: ActionTypeDefinition): number {
  if (type.expectedRange === null) return random.pick(ADJUSTMENT_AMOUNTS);
  return clippedLogNormal(random, type.expectedRange.min, type.expectedRange.max, profileFor(type).skew ?? 0);
}

export interface TokenSplit {
  input: number;
  output: number;
  audioSeconds: number | null;
}

/** Input/output tokens (adding up to tokens_used for token-unit types) and audio seconds. */
export function splitTokens(random: Random, type: ActionTypeDefinition, tokens: number): TokenSplit {
  switch (type.unit) {
    case "tokens": {
      if (type.category === "ledger") return { input: 0, output: 0, audioSeconds: null };
      const [lo, hi] = profileFor(type).inputShare;
      const input = Math.round(tokens * (lo + (hi - lo) * random.next()));
      return { input, output: tokens - input, audioSeconds: null };
    }
    case "characters":
      // Text-to-speech speaks about 15 characters a second.
      return { input: 0, output: 0, audioSeconds: Math.max(0.1, Math.round((tokens / 15) * 100) / 100) };
    case "seconds":
      // Transcription is charged a fixed amount; the clip itself is 5 s to 5 min.
      return { input: 0, output: 0, audioSeconds: random.int(500, 30_000) / 100 };
    case "images":
      return { input: 0, output: 0, audioSeconds: null };
  }
}

/**
 * The seed app's cost of one call in cents, with the same formula as app/models/cost.server.ts
 * applies when calculated_cost_cents is null, so a row's cost is the same either way.
 */
export function costCents(price: ModelPrice | undefined, split: TokenSplit): number {
  if (!price) return 0;
  if (price.price_per_unit !== null) return round4(price.price_per_unit * 100 * Math.max(split.audioSeconds ?? 0, 1));
  return round4((split.input * price.input_price_per_1m + split.output * price.output_price_per_1m) / 10_000);
}

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

export const ERROR_MESSAGES = ["rate_limit_exceeded", "timeout", "context_length_exceeded", "server_error", "invalid_response_format"];

const FIRST_NAMES = [
  "maria", "james", "sofia", "liam", "emma", "noah", "olivia", "lucas", "mia", "ethan", "ava", "mateo", "chloe", "leo",
  "amara", "yuki", "priya", "omar", "fatima", "chen", "anna", "david", "sara", "ivan", "lena", "kwame", "zoe", "diego",
  "hannah", "ali", "nora", "felix", "isla", "jonas", "elena", "marco", "aisha", "tomas", "julia", "samuel",
];
const LAST_NAMES = [
  "garcia", "smith", "mueller", "rossi", "kim", "nguyen", "patel", "silva", "johnson", "brown", "martin", "lopez",
  "novak", "tanaka", "okafor", "haddad", "andersen", "kowalski", "dubois", "fischer", "santos", "ivanova", "cohen",
  "murphy", "wang", "khan", "berg", "costa", "yilmaz", "mensah",
];

export interface DemoUser {
  user_id: string;
  email: string;
  display_name: string;
  /** Relative activity: heavy-tailed, so a few power users make much of the traffic. */
  activity: number;
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export function makeUsers(random: Random, count: number): DemoUser[] {
  const users: DemoUser[] = [];
  for (let i = 0; i < count; i++) {
    const first = random.pick(FIRST_NAMES);
    const last = random.pick(LAST_NAMES);
    const number = String(i + 1).padStart(4, "0");
    // Pareto(α = 1.2): the top 1% of users make roughly a quarter of the calls.
    const activity = Math.min(1 / Math.pow(1 - random.next(), 1 / 1.2), 200);
    users.push({
      user_id: random.uuid(),
      email: `${first}.${last}.${number}@example.com`,
      display_name: `${capitalize(first)} ${capitalize(last)}`,
      activity,
    });
  }
  return users;
}
