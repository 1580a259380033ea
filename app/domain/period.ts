/**
 * Date ranges and months in a staff member's IANA time zone. A day or month is the span
 * between two local midnights, converted to instants with the zone's rules (DST, half- and
 * quarter-hour offsets); SQL receives instants and never guesses an offset.
 */
import { DateTime, IANAZone } from "luxon";
import { z } from "zod";
import { calendarDateSchema } from "./inputs";

export function isValidTimeZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

export const timeZoneSchema = z
  .string()
  .trim()
  .min(1, "time zone is required")
  .max(64)
  .refine(isValidTimeZone, (zone) => ({ message: `unknown time zone ${JSON.stringify(zone)}; use an IANA name such as Europe/Berlin` }));

export interface DateRange {
  /** Local calendar dates, inclusive. */
  from: string;
  to: string;
  tz: string;
  /** Instants: start inclusive, end exclusive. */
  start: Date;
  end: Date;
  days: number;
}

/** The instant of local midnight that starts `date` in `tz`. */
export function startOfLocalDay(date: string, tz: string): Date {
  return DateTime.fromISO(date, { zone: tz }).startOf("day").toJSDate();
}

export function todayIn(tz: string, now: Date = new Date()): string {
  return DateTime.fromJSDate(now, { zone: tz }).toISODate() as string;
}

export function addDays(date: string, days: number): string {
  return DateTime.fromISO(date, { zone: "UTC" }).plus({ days }).toISODate() as string;
}

export function makeRange(from: string, to: string, tz: string): DateRange {
  const start = startOfLocalDay(from, tz);
  const end = startOfLocalDay(addDays(to, 1), tz);
  const days = Math.round(DateTime.fromISO(to).diff(DateTime.fromISO(from), "days").days) + 1;
  return { from, to, tz, start, end, days };
}

export const MAX_RANGE_DAYS = 731;

const rangeParamsSchema = z
  .object({
    from: calendarDateSchema.optional(),
    to: calendarDateSchema.optional(),
    tz: timeZoneSchema.optional(),
  })
  .refine((r) => !r.from || !r.to || r.from <= r.to, { message: "from must be on or before to", path: ["from"] })
  .refine((r) => !r.from || !r.to || DateTime.fromISO(r.to).diff(DateTime.fromISO(r.from), "days").days < MAX_RANGE_DAYS, {
    message: `a range may span at most ${MAX_RANGE_DAYS} days`,
    path: ["to"],
  });

export type RangeParseResult = { ok: true; range: DateRange } | { ok: false; errors: Record<string, string> };

/**
 * Reads ?from=YYYY-MM-DD&to=YYYY-MM-DD&tz=Zone. Missing values default to the last 30 days
 * in the staff member's zone; a bad value is reported by name, never silently replaced.
 */
export function parseRangeParams(params: URLSearchParams, defaultTz: string, now: Date = new Date(), defaultDays = 30): RangeParseResult {
  const parsed = rangeParamsSchema.safeParse({
    from: params.get("from") || undefined,
    to: params.get("to") || undefined,
    tz: params.get("tz") || undefined,
  });
  if (!parsed.success) {
    const errors: Record<string, string> = {};
    for (const issue of parsed.error.issues) errors[String(issue.path[0] ?? "range")] = issue.message;
    return { ok: false, errors };
  }
  const tz = parsed.data.tz ?? (isValidTimeZone(defaultTz) ? defaultTz : "UTC");
  const to = parsed.data.to ?? (parsed.data.from ? addDays(parsed.data.from, defaultDays - 1) : todayIn(tz, now));
  const from = parsed.data.from ?? addDays(to, -(defaultDays - 1));
  return { ok: true, range: makeRange(from, to, tz) };
}

export interface MonthPeriod {
  month: string;
  tz: string;
  start: Date;
  end: Date;
  /** The month has not ended yet in that zone. */
  partial: boolean;
}

export function monthPeriod(month: string, tz: string, now: Date = new Date()): MonthPeriod {
  const first = DateTime.fromISO(`${month}-01`, { zone: tz }).startOf("day");
  const next = first.plus({ months: 1 });
  return { month, tz, start: first.toJSDate(), end: next.toJSDate(), partial: next.toMillis() > now.getTime() };
}

export function previousMonth(month: string): string {
  return DateTime.fromISO(`${month}-01`, { zone: "UTC" }).minus({ months: 1 }).toFormat("yyyy-MM");
}

export function currentMonth(tz: string, now: Date = new Date()): string {
  return DateTime.fromJSDate(now, { zone: tz }).toFormat("yyyy-MM");
}

/** Every local date from..to inclusive, for filling days that have no rows. */
export function eachDate(from: string, to: string): string[] {
  const dates: string[] = [];
  for (let d = from; d <= to; d = addDays(d, 1)) dates.push(d);
  return dates;
}
