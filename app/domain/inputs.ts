/**
 * The one set of bounds for values that arrive in URLs, forms and JSON bodies. Everything a
 * loader or action reads goes through one of these, so a value PostgreSQL or luxon cannot
 * take (NUL, year 0000, 2^63, metadata 5,000 levels deep) is refused here with a message
 * naming the field, never passed on to fail as a 500.
 */
import { DateTime } from "luxon";
import { z } from "zod";
import { STORABLE_TEXT, UNSTORABLE_MESSAGE } from "./storable-text";

/**
 * Dates and months outside these years are refused: luxon and PostgreSQL break near years 0
 * and 10000. Usage arrives from 2000 on, but an adopted database may hold older rows.
 */
export const MIN_YEAR = 1970;
export const MAX_YEAR = 2100;
const YEAR_MESSAGE = `must be a year from ${MIN_YEAR} to ${MAX_YEAR}`;

// eslint-disable-next-line no-control-regex -- control characters are exactly what must be found
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
export const CONTROL_MESSAGE = "must not contain control characters (NUL, tabs, line breaks)";

/**
 * A filter or search term from a URL: trimmed, blank means "no filter", at most `max`
 * characters, without control characters or text PostgreSQL cannot store.
 */
export function filterText(max = 200) {
  return z
    .string({ invalid_type_error: "must be text" })
    .trim()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !CONTROL_CHARACTERS.test(s), CONTROL_MESSAGE)
    .refine((s) => STORABLE_TEXT.test(s), UNSTORABLE_MESSAGE)
    .optional()
    .transform((s) => s || undefined);
}

function yearOf(text: string): number {
  return Number(text.slice(0, 4));
}

/** A calendar date YYYY-MM-DD that exists (no 2026-02-30), in MIN_YEAR..MAX_YEAR. */
export const calendarDateSchema = z
  .string({ invalid_type_error: "must be a date as YYYY-MM-DD" })
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a date as YYYY-MM-DD")
  .refine((s) => DateTime.fromISO(s, { zone: "UTC" }).isValid, "is not a real date")
  .refine((s) => yearOf(s) >= MIN_YEAR && yearOf(s) <= MAX_YEAR, YEAR_MESSAGE);

/** A month YYYY-MM in MIN_YEAR..MAX_YEAR. */
export const calendarMonthSchema = z
  .string({ invalid_type_error: "must be a month as YYYY-MM" })
  .regex(/^\d{4}-(0[1-9]|1[0-2])$/, "must be a month as YYYY-MM")
  .refine((s) => yearOf(s) >= MIN_YEAR && yearOf(s) <= MAX_YEAR, YEAR_MESSAGE);

export const INT8_MAX = 9_223_372_036_854_775_807n;

/**
 * A bigint row id (decimal digits, 1 to int8's maximum). Ids above 2^53 cannot be told apart
 * as JS numbers, so the value is kept as the exact decimal text, which PostgreSQL reads as int8.
 */
export const bigintIdSchema = z
  .string({ required_error: "is required", invalid_type_error: "must be a whole number" })
  .trim()
  .transform((s, ctx) => {
    // One step, not chained checks: zod runs later refinements even after the pattern failed.
    const id = /^\d{1,30}$/.test(s) ? BigInt(s) : null;
    const problem = id === null ? "must be a whole number" : id < 1n ? "must be 1 or more" : id > INT8_MAX ? `must be at most ${INT8_MAX}` : null;
    if (problem) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
      return z.NEVER;
    }
    return String(id);
  });

/** A positive whole number of tokens up to `max`, from a form (text) or JSON (number). */
export function tokenAmountSchema(max: number) {
  return z.coerce
    .number({ invalid_type_error: "must be a whole number of tokens" })
    .int("must be a whole number of tokens")
    .positive("must be greater than 0")
    .max(max, `must be at most ${max.toLocaleString("en-US")}`);
}

export const METADATA_MAX_DEPTH = 32;
/** Characters of keys and strings, plus one per value: about the size of the JSON text. */
export const METADATA_MAX_SIZE = 64 * 1024;

/**
 * What is wrong with a metadata value, or null: too deep, too large, or holding text
 * PostgreSQL cannot store. A plain walk that stops at the bound, not a zod refinement: it
 * runs for every event of a 1,000-event batch.
 */
export function metadataProblem(value: unknown): string | null {
  let size = 0;
  const walk = (node: unknown, depth: number): string | null => {
    if (depth > METADATA_MAX_DEPTH) return `must not be nested more than ${METADATA_MAX_DEPTH} levels deep`;
    size += 1;
    if (typeof node === "string") {
      size += node.length;
      return STORABLE_TEXT.test(node) ? null : UNSTORABLE_MESSAGE;
    }
    if (node === null || typeof node !== "object") return null;
    const entries: [string | null, unknown][] = Array.isArray(node) ? node.map((v) => [null, v]) : Object.entries(node);
    for (const [key, inner] of entries) {
      if (key !== null) {
        size += key.length;
        if (!STORABLE_TEXT.test(key)) return UNSTORABLE_MESSAGE;
      }
      const problem = walk(inner, depth + 1);
      if (problem) return problem;
      if (size > METADATA_MAX_SIZE) return `must be at most ${METADATA_MAX_SIZE.toLocaleString("en-US")} characters of JSON`;
    }
    return null;
  };
  return walk(value, 1);
}
