import fc from "fast-check";
import type { DateTime } from "luxon";
import { describe, expect, it } from "vitest";
import { splitRange, userRangeSplit, utcDays } from "../../app/models/rollup.server";
import { reportBounds } from "../../app/models/reports.server";
import { monthPeriod } from "../../app/domain/period";

const DAY = 86_400_000;
const isMidnight = (d: DateTime) => d.toMillis() % DAY === 0;
/** Instants from 2020 to 2030, often on a UTC midnight (the cases rounding can get wrong). */
const instant = fc.oneof(
  fc.integer({ min: 1_577_836_800_000, max: 1_893_456_000_000 }),
  fc.integer({ min: 18_262, max: 21_914 }).map((day) => day * DAY),
);
const range = fc.tuple(instant, instant).map(([a, b]) => ({ start: new Date(Math.min(a, b)), end: new Date(Math.max(a, b)) }));

describe("utcDays", () => {
  it("inner days lie inside the range and outer days cover it, all on UTC midnights", () => {
    fc.assert(
      fc.property(range, (r) => {
        const { innerFrom, innerTo, outerFrom, outerTo } = utcDays(r);
        const [start, end] = [r.start.getTime(), r.end.getTime()];
        expect(innerFrom <= innerTo).toBe(true);
        if (innerFrom < innerTo) expect(innerFrom.toMillis() >= start && innerTo.toMillis() <= end).toBe(true);
        expect(innerFrom.toMillis() - start).toBeLessThan(DAY);
        expect(outerFrom.toMillis() <= start && outerTo.toMillis() >= end).toBe(true);
        expect(start - outerFrom.toMillis()).toBeLessThan(DAY);
        expect(outerTo.toMillis() - end).toBeLessThan(DAY);
        if (innerFrom < innerTo) expect([innerFrom, innerTo, outerFrom, outerTo].every(isMidnight)).toBe(true);
        else expect([outerFrom, outerTo].every(isMidnight)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it("the report bounds, the dashboard split and the per-user split use the same days", () => {
    fc.assert(
      fc.property(range, (r) => {
        const { innerFrom, innerTo, outerFrom } = utcDays(r);
        const bounds = reportBounds(r.start, r.end);
        expect([bounds.d0, bounds.d1]).toEqual([innerFrom.toISODate(), innerTo.toISODate()]);
        const split = splitRange(r);
        if (innerFrom < innerTo) expect(split.days && [split.days.from, split.days.to]).toEqual([innerFrom.toISODate(), innerTo.toISODate()]);
        else expect(split.days).toBeNull();
        const user = userRangeSplit(r);
        if (user.days) expect(user.days.from >= (outerFrom.toISODate() as string)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it("a month's edge day is read whole when the month covers more than half of it", () => {
    const subs = (month: string, tz: string) => {
      const b = reportBounds(monthPeriod(month, tz).start, monthPeriod(month, tz).end);
      return [b.lead_sub, b.tail_sub, b.r0, b.d1];
    };
    // New York (UTC−5 on 1 March): 19 of the first UTC day's 24 hours are March.
    expect(subs("2023-03", "America/New_York")).toEqual(["true", "false", "2023-03-01", "2023-04-01"]);
    // Kolkata (UTC+5:30): 18.5 hours of 31 May UTC are May; 5.5 hours of 30 April.
    expect(subs("2023-05", "Asia/Kolkata")).toEqual(["false", "true", "2023-05-01", "2023-05-31"]);
    expect(subs("2023-05", "UTC")).toEqual(["false", "false", "2023-05-01", "2023-06-01"]);
  });
});
