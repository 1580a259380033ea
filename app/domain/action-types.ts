/**
 * The action-type registry: the one place that says which action types exist.
 *
 * Everything else is derived from this list: the zod enum and TS union used by
 * ingest, the `token_usage_action_type_check` constraint that `cli migrate`
 * applies, the default rows of `ai_action_token_overrides`, the docs table and
 * the drift check. Adding a type is one edit here plus `npm run cli -- migrate`.
 *
 * Values come from the seed app's ACTION_TYPES_REFERENCE.md.
 */
import { z } from "zod";

export type ActionCategory = "ai" | "ledger";
export type ActionUnit = "tokens" | "characters" | "seconds" | "images";

/** Inclusive expected range of `tokens_used` for one call; `null` means "variable". */
export interface ExpectedRange {
  min: number;
  max: number;
}

export interface ActionTypeDefinition {
  name: string;
  label: string;
  description: string;
  category: ActionCategory;
  unit: ActionUnit;
  expectedRange: ExpectedRange | null;
  routes: readonly string[];
  /** Tokens charged per call regardless of what the model reported. */
  defaultOverride: number | null;
}

const registry = [
  {
    name: "assessment_scoring",
    label: "Assessment scoring",
    description: "AI scoring of assessment responses",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 200, max: 500 },
    routes: ["/api/assessment/ai-score"],
    defaultOverride: null,
  },
  {
    name: "vision_generation",
    label: "Vision generation",
    description: "Vision document generation",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 1_000, max: 3_000 },
    routes: ["/api/vision/generate", "/api/vision/chat"],
    defaultOverride: null,
  },
  {
    name: "vision_refinement",
    label: "Vision refinement",
    description: "Vision refinement operations",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 20_000, max: 100_000 },
    routes: ["/api/vibe-assistant/refine-vision", "/api/viva/refine-category"],
    defaultOverride: null,
  },
  {
    name: "blueprint_generation",
    label: "Blueprint generation",
    description: "Actualization blueprint generation",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 150_000, max: 300_000 },
    routes: ["/api/vibe-assistant/generate-blueprint"],
    defaultOverride: null,
  },
  {
    name: "chat_conversation",
    label: "Chat conversation",
    description: "VIVA chat interactions",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 2_000, max: 5_000 },
    routes: ["/api/viva/chat"],
    defaultOverride: null,
  },
  {
    name: "audio_generation",
    label: "Audio generation",
    description: "Text-to-speech and transcription (character-based)",
    category: "ai",
    unit: "characters",
    expectedRange: { min: 1, max: 100 },
    routes: ["/lib/services/audioService.ts", "/api/transcribe"],
    defaultOverride: 1,
  },
  {
    name: "image_generation",
    label: "Image generation",
    description: "DALL-E image generation (fixed cost via override)",
    category: "ai",
    unit: "images",
    expectedRange: { min: 25, max: 25 },
    routes: ["/lib/services/imageService.ts"],
    defaultOverride: 25,
  },
  {
    name: "transcription",
    label: "Transcription",
    description: "Speech-to-text transcription (fixed cost via override)",
    category: "ai",
    unit: "seconds",
    expectedRange: { min: 60, max: 60 },
    routes: ["/api/transcribe"],
    defaultOverride: 60,
  },
  {
    name: "admin_grant",
    label: "Admin grant",
    description: "Admin token grants",
    category: "ledger",
    unit: "tokens",
    expectedRange: null,
    routes: ["/api/admin/users/adjust-tokens"],
    defaultOverride: null,
  },
  {
    name: "admin_deduct",
    label: "Admin deduct",
    description: "Admin token deductions",
    category: "ledger",
    unit: "tokens",
    expectedRange: null,
    routes: ["/api/admin/users/adjust-tokens"],
    defaultOverride: null,
  },
  {
    name: "life_vision_category_summary",
    label: "Life vision category summary",
    description: "Category summaries",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 20_000, max: 50_000 },
    routes: ["/api/viva/category-summary", "/api/viva/merge-clarity"],
    defaultOverride: null,
  },
  {
    name: "life_vision_master_assembly",
    label: "Life vision master assembly",
    description: "Master vision assembly",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 100_000, max: 200_000 },
    routes: ["/api/viva/master-vision"],
    defaultOverride: null,
  },
  {
    name: "prompt_suggestions",
    label: "Prompt suggestions",
    description: "Prompt suggestion generation",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 1_000, max: 2_000 },
    routes: ["/api/viva/prompt-suggestions"],
    defaultOverride: null,
  },
  {
    name: "frequency_flip",
    label: "Frequency flip",
    description: "Frequency flipping operations",
    category: "ai",
    unit: "tokens",
    expectedRange: { min: 500, max: 2_000 },
    routes: ["/api/viva/flip-frequency"],
    defaultOverride: null,
  },
] as const satisfies readonly ActionTypeDefinition[];

export type ActionType = (typeof registry)[number]["name"];

export const ACTION_TYPES: readonly ActionTypeDefinition[] = registry;

export const ACTION_TYPE_NAMES = registry.map((t) => t.name) as [ActionType, ...ActionType[]];

export const actionTypeSchema = z.enum(ACTION_TYPE_NAMES, {
  errorMap: (issue, ctx) =>
    issue.code === "invalid_enum_value"
      ? { message: `unknown action type ${JSON.stringify(issue.received)}; allowed: ${ACTION_TYPE_NAMES.join(", ")}` }
      : { message: ctx.defaultError },
});

const byName = new Map<string, ActionTypeDefinition>(registry.map((t) => [t.name, t]));

export function isRegisteredActionType(name: string): name is ActionType {
  return byName.has(name);
}

export function getActionType(name: string): ActionTypeDefinition | undefined {
  return byName.get(name);
}

export function defaultOverrides(): { actionType: ActionType; tokenValue: number }[] {
  return registry.flatMap((t) =>
    t.defaultOverride === null ? [] : [{ actionType: t.name as ActionType, tokenValue: t.defaultOverride }],
  );
}

/** Which registered action types a route is allowed to produce. */
export function actionTypesForRoute(route: string): ActionType[] {
  return registry.filter((t) => (t.routes as readonly string[]).includes(route)).map((t) => t.name);
}

/**
 * How an OpenTelemetry GenAI span that names no action type (`tokenboard.action_type`) maps to
 * one. Each given field must equal the span's: `operation` its `gen_ai.operation.name`,
 * `spanName` its name, `route` its `http.route`. Entries that name a route are tried first, then
 * the route table above (`routes`, where the route has exactly one AI type), then the entries
 * without a route; within each group the first match wins.
 */
export interface SpanActionMapping {
  actionType: ActionType;
  operation?: string;
  spanName?: string;
  route?: string;
}

export const SPAN_ACTION_MAPPINGS: readonly SpanActionMapping[] = [
  // A GenAI chat call (OpenLLMetry, OpenTelemetry's own instrumentations) on no known route.
  { operation: "chat", actionType: "chat_conversation" },
  // The Vercel AI SDK sets no gen_ai.operation.name; streamText's provider call is a chat.
  { spanName: "ai.streamText.doStream", actionType: "chat_conversation" },
];

export interface SpanIdentity {
  operation: string | null;
  spanName: string;
  route: string | null;
}

/** The action type a span maps to without an explicit one, or null when nothing maps it. */
export function actionTypeForSpan(span: SpanIdentity, mappings: readonly SpanActionMapping[] = SPAN_ACTION_MAPPINGS): ActionType | null {
  const matches = (wanted: string | undefined, actual: string | null) => wanted === undefined || wanted === actual;
  const fits = (m: SpanActionMapping) => matches(m.operation, span.operation) && matches(m.spanName, span.spanName) && matches(m.route, span.route);
  const forRoute = mappings.find((m) => m.route !== undefined && fits(m));
  if (forRoute) return forRoute.actionType;
  if (span.route) {
    const byRoute = actionTypesForRoute(span.route).filter((name) => byName.get(name)?.category === "ai");
    if (byRoute.length === 1) return byRoute[0] as ActionType;
  }
  return mappings.find((m) => m.route === undefined && fits(m))?.actionType ?? null;
}

/** Where a token amount lies against a type's expected range. */
export function classifyAgainstRange(
  range: ExpectedRange | null,
  tokens: number,
): { position: "below" | "within" | "above" | "variable"; distance: number } {
  if (range === null) return { position: "variable", distance: 0 };
  if (tokens < range.min) return { position: "below", distance: range.min - tokens };
  if (tokens > range.max) return { position: "above", distance: tokens - range.max };
  return { position: "within", distance: 0 };
}

export function formatExpectedRange(range: ExpectedRange | null): string {
  if (range === null) return "variable";
  const fmt = (n: number) => n.toLocaleString("en-US");
  return range.min === range.max ? `${fmt(range.min)} (fixed)` : `${fmt(range.min)}–${fmt(range.max)}`;
}
