import { describe, expect, it } from "vitest";
import { evaluateUserSpike, median, medianAbsoluteDeviation, USER_SPIKE } from "../../../app/domain/outlier-rules/user-spike";

const day = (tokens: number, baseline: number[], largestCall = Math.ceil(tokens / 9)) => ({
  userId: "22222222-2222-4222-8222-222222222222",
  day: "2025-03-04",
  tokens,
  calls: 9,
  largestCall,
  baseline,
  firstAt: new Date("2025-03-04T06:00:00Z"),
});

const usual = [8_000, 12_000, 9_500, 11_000, 10_000, 7_000, 13_000, 10_500, 9_000, 12_500];

describe("user_spike rule", () => {
  it("computes median and MAD robustly, for odd and even counts", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(medianAbsoluteDeviation([1, 2, 3, 4, 100])).toBe(1);
  });

  it("fires when the day is far above the user's own median and MAD, with the numbers", () => {
    const f = evaluateUserSpike(day(400_000, usual));
    expect(f?.rule).toBe("user_spike");
    expect(f?.details).toMatchObject({ median: 10_250, baselineActiveDays: 10, k: USER_SPIKE.k, multiple: USER_SPIKE.multiple });
    expect(f?.details.robustZ as number).toBeGreaterThan(50);
    expect(f?.message).toContain("400,000 tokens in 9 calls on 2025-03-04 (UTC), 39× their median of 10,250 over 10 active days of the previous 28");
  });

  it("does not fire on a normal day or a day only somewhat above usual", () => {
    expect(evaluateUserSpike(day(11_000, usual))).toBeNull();
    expect(evaluateUserSpike(day(25_000, usual))).toBeNull();
  });

  it("does not fire below the absolute floor even when relatively huge", () => {
    expect(evaluateUserSpike(day(90_000, [100, 120, 90, 110, 100]))).toBeNull();
  });

  it("handles MAD = 0: the multiple of the median still decides", () => {
    const flat = [50_000, 50_000, 50_000, 50_000, 50_000, 50_000];
    expect(evaluateUserSpike(day(140_000, flat))).toBeNull();
    const f = evaluateUserSpike(day(180_000, flat));
    expect(f?.details).toMatchObject({ mad: 0, robustZ: null, threshold: 150_000 });
    expect(f?.message).toContain("MAD 0");
  });

  it("does not fire when one large call explains the day", () => {
    expect(evaluateUserSpike(day(310_000, usual, 300_000))).toBeNull();
    expect(evaluateUserSpike(day(410_000, usual, 200_000))?.details).toMatchObject({ largestCall: 200_000, withoutLargestCall: 210_000 });
  });

  it("needs enough active baseline days: a new user has no usual day yet", () => {
    expect(evaluateUserSpike(day(900_000, [1_000, 1_000, 1_000, 1_000]))).toBeNull();
    expect(evaluateUserSpike(day(900_000, []))).toBeNull();
  });
});
