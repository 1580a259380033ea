import { describe, expect, it } from "vitest";
import { evaluateUnregisteredType } from "../../../app/domain/outlier-rules/unregistered-type";

const group = (actionType: string) => ({ actionType, day: "2025-03-04", calls: 1_204, tokens: 98_000, firstAt: new Date("2025-03-04T00:05:00Z") });

describe("unregistered_type rule", () => {
  it("fires once per type and day with the count of calls", () => {
    const f = evaluateUnregisteredType(group("vibrational_analysis"));
    expect(f?.dedupeKey).toBe("unregistered_type:vibrational_analysis:2025-03-04");
    expect(f?.observed).toBe(1_204);
    expect(f?.message).toMatch(/^unregistered action type vibrational_analysis: 1,204 calls, 98,000 tokens on 2025-03-04 \(UTC\)/);
  });

  it("does not fire for registered types, frequency_flip included", () => {
    expect(evaluateUnregisteredType(group("frequency_flip"))).toBeNull();
    expect(evaluateUnregisteredType(group("admin_grant"))).toBeNull();
  });
});
