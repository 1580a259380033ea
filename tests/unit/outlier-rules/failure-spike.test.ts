import { describe, expect, it } from "vitest";
import { baselineRate, binomialUpperTail, evaluateFailureSpike } from "../../../app/domain/outlier-rules/failure-spike";

const typeDay = (calls: number, failures: number, baselineCalls: number, baselineFailures: number) => ({
  actionType: "chat_conversation",
  day: "2025-03-04",
  calls,
  failures,
  baselineCalls,
  baselineFailures,
  firstAt: new Date("2025-03-04T00:01:00Z"),
});

describe("failure_spike rule", () => {
  it("fires when a day's failure rate is far above the type's trailing rate, with z and rates", () => {
    const f = evaluateFailureSpike(typeDay(400, 160, 11_000, 220));
    expect(f?.rule).toBe("failure_spike");
    expect(f?.observed).toBeCloseTo(0.4);
    expect(f?.details.z as number).toBeGreaterThan(20);
    expect(f?.message).toMatch(/^chat_conversation failed 160 of 400 calls on 2025-03-04 \(UTC\): 40\.0% against 2\.0% over the previous 28 days \(220 of 11,000\), z \d+\.\d, p \d\.\de-\d+$/);
  });

  it("does not fire at the usual rate or on a statistically small bump", () => {
    expect(evaluateFailureSpike(typeDay(400, 9, 11_000, 220))).toBeNull();
    expect(evaluateFailureSpike(typeDay(400, 16, 11_000, 220))).toBeNull();
  });

  it("computes the exact binomial tail on both sides of the mean", () => {
    expect(binomialUpperTail(10, 0, 0.3)).toBe(1);
    expect(binomialUpperTail(10, 11, 0.3)).toBe(0);
    expect(binomialUpperTail(4, 4, 0.5)).toBeCloseTo(1 / 16, 12);
    expect(binomialUpperTail(4, 2, 0.5)).toBeCloseTo(11 / 16, 12);
    expect(binomialUpperTail(30, 4, 0.022)).toBeCloseTo(0.0036, 3);
  });

  it("does not fire on a few failures of a quiet type, where the z-score would overstate them", () => {
    // 4 of 30 at about 2%: z ≈ 4.2 but the exact tail is ≈ 0.004.
    expect(evaluateFailureSpike(typeDay(30, 4, 619, 13))).toBeNull();
  });

  it("does not fire on too few calls, however bad", () => {
    expect(evaluateFailureSpike(typeDay(10, 10, 11_000, 220))).toBeNull();
  });

  it("does not fire on a significant but tiny excess on a busy type", () => {
    // 3.5% vs 2%: z is large on 20,000 calls, but the excess is under 5 points.
    expect(evaluateFailureSpike(typeDay(20_000, 700, 500_000, 10_000))).toBeNull();
  });

  it("keeps the baseline above zero for a type that never failed, and still fires on a real spike", () => {
    expect(baselineRate({ baselineCalls: 0, baselineFailures: 0 })).toBeCloseTo(0.05);
    expect(baselineRate({ baselineCalls: 980, baselineFailures: 0 })).toBeCloseTo(0.001);
    expect(evaluateFailureSpike(typeDay(50, 1, 980, 0))).toBeNull();
    expect(evaluateFailureSpike(typeDay(50, 20, 980, 0))).not.toBeNull();
  });
});
