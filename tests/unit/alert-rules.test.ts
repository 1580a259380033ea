import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  balanceCrossing,
  retryDelayMs,
  RETRY_CAP_MS,
  slackBody,
  spendPeriod,
  spendRuleSchema,
  type AlertMessage,
  type BalanceSide,
} from "../../app/features/alerts/rules";

/** Counts crossings of the threshold directly from the sequence, as a person would. */
function expectedCrossings(
  balances: number[],
  threshold: number,
): { down: number; up: number } {
  let below = false;
  let down = 0;
  let up = 0;
  for (const balance of balances) {
    if (!below && balance < threshold) {
      below = true;
      down += 1;
    } else if (below && balance >= threshold) {
      below = false;
      up += 1;
    }
  }
  return { down, up };
}

describe("balance crossings", () => {
  it("raise exactly one alert per downward crossing and one recovery per upward crossing, for any sequence", () => {
    fc.assert(
      // Half the cases hover around the threshold, so balances equal to it are common.
      fc.property(
        fc
          .integer({ min: 0, max: 3_000 })
          .chain((threshold) =>
            fc.tuple(
              fc.array(
                fc.oneof(
                  fc.integer({ min: -5_000, max: 5_000 }),
                  fc.integer({ min: threshold - 2, max: threshold + 2 }),
                ),
                { maxLength: 200 },
              ),
              fc.constant(threshold),
            ),
          ),
        ([balances, threshold]) => {
          let side: BalanceSide | undefined;
          const alerts: string[] = [];
          for (const balance of balances) {
            const result = balanceCrossing(side, balance, threshold);
            side = result.side;
            if (result.alert) alerts.push(result.alert);
          }
          const expected = expectedCrossings(balances, threshold);
          expect(alerts.filter((a) => a === "balance.low")).toHaveLength(
            expected.down,
          );
          expect(alerts.filter((a) => a === "balance.recovered")).toHaveLength(
            expected.up,
          );
          // They alternate, starting with a low: never two lows without a recovery between them.
          alerts.forEach((alert, i) =>
            expect(alert).toBe(
              i % 2 === 0 ? "balance.low" : "balance.recovered",
            ),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it("treats a balance equal to the threshold as not below it", () => {
    expect(balanceCrossing(undefined, 1000, 1000)).toEqual({
      side: "above",
      alert: null,
    });
    expect(balanceCrossing(undefined, 999, 1000)).toEqual({
      side: "below",
      alert: "balance.low",
    });
    expect(balanceCrossing("below", 1000, 1000)).toEqual({
      side: "above",
      alert: "balance.recovered",
    });
  });
});

describe("retry schedule", () => {
  it("doubles from 30 s, is capped at an hour, and jitters by at most 20 %", () => {
    expect(retryDelayMs(1, 0.5)).toBe(30_000);
    expect(retryDelayMs(2, 0.5)).toBe(60_000);
    expect(retryDelayMs(30, 0.5)).toBe(RETRY_CAP_MS);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, random) => {
          const base = Math.min(RETRY_CAP_MS, 30_000 * 2 ** (attempt - 1));
          const delay = retryDelayMs(attempt, random);
          expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
          expect(delay).toBeLessThanOrEqual(Math.ceil(base * 1.2));
        },
      ),
    );
  });

  it("keeps retrying for at least 24 hours: the delays before the cap add up to well under a day", () => {
    let elapsed = 0;
    let attempts = 0;
    while (elapsed < 24 * 3_600_000) {
      attempts += 1;
      elapsed += retryDelayMs(attempts, 1 - Number.EPSILON);
    }
    expect(attempts).toBeGreaterThan(20);
  });
});

describe("Slack message", () => {
  const message: AlertMessage = {
    id: "a1",
    type: "balance.low",
    created_at: "2026-12-08T00:00:00.000Z",
    user_id: "u1",
    title: "Balance below threshold",
    text: "User <u1> has 5 tokens",
    path: "/users/u1",
    details: {},
  };

  it("has a fallback text, blocks, and a button linking back to the page", () => {
    const body = slackBody(message, "https://tb.example.com/base");
    expect(body.text).toContain("Balance below threshold");
    const blocks = body.blocks as {
      type: string;
      elements?: { url?: string }[];
      text?: { text: string };
    }[];
    expect(blocks.map((b) => b.type)).toEqual([
      "header",
      "section",
      "context",
      "actions",
    ]);
    expect(blocks[1]?.text?.text).toBe("User &lt;u1&gt; has 5 tokens");
    expect(blocks[3]?.elements?.[0]?.url).toBe(
      "https://tb.example.com/base/users/u1",
    );
  });
});

describe("spend periods in a zone", () => {
  const iso = (d: Date) => d.toISOString();

  it("starts Asia/Kolkata's day at 18:30 UTC the evening before", () => {
    const day = spendPeriod(
      "day",
      "Asia/Kolkata",
      new Date("2026-01-10T18:29:59Z"),
    );
    expect({ key: day.key, start: iso(day.start), end: iso(day.end) }).toEqual({
      key: "2026-01-10",
      start: "2026-01-09T18:30:00.000Z",
      end: "2026-01-10T18:30:00.000Z",
    });
    expect(
      spendPeriod("day", "Asia/Kolkata", new Date("2026-01-10T18:30:00Z")).key,
    ).toBe("2026-01-11");
  });

  it("follows Pacific/Chatham's +13:45 and +12:45 offsets, and its months", () => {
    const summer = spendPeriod(
      "day",
      "Pacific/Chatham",
      new Date("2026-01-10T12:00:00Z"),
    );
    expect([summer.key, iso(summer.start)]).toEqual([
      "2026-01-11",
      "2026-01-10T10:15:00.000Z",
    ]);
    const winter = spendPeriod(
      "day",
      "Pacific/Chatham",
      new Date("2026-07-10T12:00:00Z"),
    );
    expect([winter.key, iso(winter.start)]).toEqual([
      "2026-07-11",
      "2026-07-10T11:15:00.000Z",
    ]);
    // 23:00 UTC on 31 January is already 1 February there.
    const month = spendPeriod(
      "month",
      "Pacific/Chatham",
      new Date("2026-01-31T23:00:00Z"),
    );
    expect([month.key, iso(month.start), iso(month.end)]).toEqual([
      "2026-02",
      "2026-01-31T10:15:00.000Z",
      "2026-02-28T10:15:00.000Z",
    ]);
  });

  it("makes America/New_York's DST days 23 and 25 hours long", () => {
    const spring = spendPeriod(
      "day",
      "America/New_York",
      new Date("2026-03-08T12:00:00Z"),
    );
    expect([
      spring.key,
      iso(spring.start),
      (spring.end.getTime() - spring.start.getTime()) / 3_600_000,
    ]).toEqual(["2026-03-08", "2026-03-08T05:00:00.000Z", 23]);
    const autumn = spendPeriod(
      "day",
      "America/New_York",
      new Date("2026-11-01T12:00:00Z"),
    );
    expect([
      autumn.key,
      iso(autumn.start),
      (autumn.end.getTime() - autumn.start.getTime()) / 3_600_000,
    ]).toEqual(["2026-11-01", "2026-11-01T04:00:00.000Z", 25]);
    const march = spendPeriod(
      "month",
      "America/New_York",
      new Date("2026-03-31T23:30:00Z"),
    );
    expect([march.key, iso(march.start), iso(march.end)]).toEqual([
      "2026-03",
      "2026-03-01T05:00:00.000Z",
      "2026-04-01T04:00:00.000Z",
    ]);
  });

  it("names the bad field of a spend rule", () => {
    expect(
      spendRuleSchema.safeParse({
        period: "week",
        zone: "UTC",
        threshold: 5,
        scope: "total",
      }).error?.issues[0],
    ).toMatchObject({ path: ["period"], message: "must be day or month" });
    expect(
      spendRuleSchema.safeParse({
        period: "day",
        zone: "Mars/Olympus",
        threshold: 5,
        scope: "total",
      }).error?.issues[0],
    ).toMatchObject({ path: ["zone"] });
    expect(
      spendRuleSchema.safeParse({
        period: "day",
        zone: "UTC",
        threshold: 5,
        scope: "action_type",
      }).error?.issues[0],
    ).toMatchObject({
      path: ["action_type"],
      message: "is required for the action_type scope",
    });
  });
});
