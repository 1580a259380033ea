/**
 * Option values shared by `cli seed` and `npm run bench`: counts may be written as
 * 300000, 300_000, 300k or 10M, since typing seven zeros is how people get a size wrong.
 */
import { parseArgs } from "node:util";
import { z } from "zod";

const MULTIPLIERS: Record<string, number> = { "": 1, k: 1_000, m: 1_000_000 };

export function countOption(name: string, min = 0) {
  return z
    .string()
    .trim()
    .regex(/^\d[\d_]*(\.\d+)?[kKmM]?$/, `--${name} must be a whole number such as 300000, 300k or 10M`)
    .transform((text) => {
      const suffix = text.slice(-1).toLowerCase();
      const multiplier = MULTIPLIERS[suffix] ?? 1;
      const digits = multiplier === 1 ? text : text.slice(0, -1);
      return Math.round(Number(digits.replaceAll("_", "")) * multiplier);
    })
    .refine((n) => Number.isSafeInteger(n) && n >= min, `--${name} must be a whole number of at least ${min}`);
}

type OptionKinds = Record<string, { type: "string" | "boolean" }>;

/**
 * Splits argv into options with node's parseArgs, then validates them with `schema`. Returns
 * the parsed value or one message naming the offending option (the caller exits with 2).
 */
export function parseCliOptions<T>(args: string[], kinds: OptionKinds, schema: z.ZodType<T, z.ZodTypeDef, unknown>): { ok: true; data: T } | { ok: false; message: string } {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args, options: kinds, strict: true, allowPositionals: false }).values;
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message.replace(/\. To specify.*$/s, "") : String(error) };
  }
  const parsed = schema.safeParse(values);
  if (parsed.success) return { ok: true, data: parsed.data };
  const issue = parsed.error.issues[0];
  const message = issue?.message ?? "invalid options";
  return { ok: false, message: message.startsWith("--") ? message : `--${issue?.path.join(".")}: ${message}` };
}
