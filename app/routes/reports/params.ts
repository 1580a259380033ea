import { z } from "zod";
import { calendarMonthSchema } from "~/domain/inputs";
import { currentMonth, isValidTimeZone, monthPeriod, previousMonth, timeZoneSchema, type MonthPeriod } from "~/domain/period";
import { fieldErrors, type FieldErrors } from "~/lib/validation";

const reportParamsSchema = z.object({
  month: calendarMonthSchema.optional(),
  tz: timeZoneSchema.optional(),
});

export type ReportParams = { ok: true; period: MonthPeriod; previous: MonthPeriod } | { ok: false; errors: FieldErrors };

/**
 * ?month=YYYY-MM&tz=Zone for the page and both downloads. The zone defaults to the staff
 * member's own, the month to the current one in that zone; a bad value is an error by name.
 */
export function parseReportParams(params: URLSearchParams, defaultTz: string, now: Date = new Date()): ReportParams {
  const parsed = reportParamsSchema.safeParse({ month: params.get("month") || undefined, tz: params.get("tz") || undefined });
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error) };
  const tz = parsed.data.tz ?? (isValidTimeZone(defaultTz) ? defaultTz : "UTC");
  const month = parsed.data.month ?? currentMonth(tz, now);
  return { ok: true, period: monthPeriod(month, tz, now), previous: monthPeriod(previousMonth(month), tz, now) };
}

export function describeErrors(errors: FieldErrors): string {
  return Object.entries(errors).map(([field, message]) => `${field}: ${message}`).join("; ");
}
