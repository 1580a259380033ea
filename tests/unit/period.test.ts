import { describe, expect, it } from "vitest";
import { makeRange, monthPeriod, parseRangeParams, previousMonth, timeZoneSchema } from "../../app/domain/period";

const iso = (d: Date) => d.toISOString();

describe("date ranges in a time zone", () => {
  it("starts and ends days at local midnight, for half- and quarter-hour offsets too", () => {
    expect(iso(makeRange("2026-01-10", "2026-01-10", "Asia/Kolkata").start)).toBe("2026-01-09T18:30:00.000Z");
    expect(iso(makeRange("2026-01-10", "2026-01-10", "Australia/Adelaide").start)).toBe("2026-01-09T13:30:00.000Z");
    expect(iso(makeRange("2026-01-10", "2026-01-10", "Pacific/Chatham").start)).toBe("2026-01-09T10:15:00.000Z");
    expect(iso(makeRange("2026-07-10", "2026-07-10", "Pacific/Chatham").start)).toBe("2026-07-09T11:15:00.000Z");
  });

  it("makes a DST-change day 23 or 25 hours long", () => {
    const spring = makeRange("2026-03-08", "2026-03-08", "America/New_York");
    expect((spring.end.getTime() - spring.start.getTime()) / 3_600_000).toBe(23);
    const autumn = makeRange("2026-10-25", "2026-10-25", "Europe/Berlin");
    expect((autumn.end.getTime() - autumn.start.getTime()) / 3_600_000).toBe(25);
  });

  it("defaults to the last 30 days in the given zone", () => {
    const parsed = parseRangeParams(new URLSearchParams(), "Asia/Kolkata", new Date("2026-11-24T20:00:00Z"));
    expect(parsed.ok && { from: parsed.range.from, to: parsed.range.to, tz: parsed.range.tz }).toEqual({ from: "2026-10-27", to: "2026-11-25", tz: "Asia/Kolkata" });
  });

  it("names the bad parameter instead of guessing", () => {
    expect(parseRangeParams(new URLSearchParams({ from: "2026-02-30" }), "UTC")).toEqual({ ok: false, errors: { from: "is not a real date" } });
    const reversed = parseRangeParams(new URLSearchParams({ from: "2026-03-01", to: "2026-02-01" }), "UTC");
    expect(reversed).toEqual({ ok: false, errors: { from: "from must be on or before to" } });
    const zone = parseRangeParams(new URLSearchParams({ tz: "Mars/Olympus" }), "UTC");
    expect(zone.ok).toBe(false);
    expect(zone.ok ? "" : zone.errors.tz).toContain("unknown time zone");
  });

  it("accepts IANA zones only", () => {
    expect(timeZoneSchema.safeParse("Europe/Berlin").success).toBe(true);
    expect(timeZoneSchema.safeParse("UTC").success).toBe(true);
    expect(timeZoneSchema.safeParse("CEST+2").success).toBe(false);
  });
});

describe("months in a time zone", () => {
  it("spans local midnight on the 1st to local midnight on the next 1st", () => {
    const march = monthPeriod("2026-03", "America/New_York", new Date("2026-11-24T00:00:00Z"));
    expect(iso(march.start)).toBe("2026-03-01T05:00:00.000Z");
    expect(iso(march.end)).toBe("2026-04-01T04:00:00.000Z");
    expect(march.partial).toBe(false);
  });

  it("marks a month that is not over yet as partial", () => {
    expect(monthPeriod("2026-11", "UTC", new Date("2026-11-24T00:00:00Z")).partial).toBe(true);
  });

  it("knows the previous month across a year", () => {
    expect(previousMonth("2026-01")).toBe("2025-12");
  });
});
