import { describe, expect, it } from "vitest";
import { formatFlagNumbers } from "../../../app/domain/outlier-rules";

describe("a flag's numbers in one cell", () => {
  it("shows each rule's observed value against its expectation", () => {
    expect(formatFlagNumbers("out_of_range", 12_000, 2_000, 5_000)).toBe("12,000 vs 2,000–5,000");
    expect(formatFlagNumbers("out_of_range", 30, 25, 25)).toBe("30 vs 25");
    expect(formatFlagNumbers("override_mismatch", 30, 25, 25)).toBe("30 vs 25");
    expect(formatFlagNumbers("unregistered_type", 1_204, null, null)).toBe("1,204 calls");
    expect(formatFlagNumbers("unregistered_type", 1, null, null)).toBe("1 call");
    expect(formatFlagNumbers("user_spike", 410_000, null, 60_000)).toBe("410,000 > 60,000");
    expect(formatFlagNumbers("failure_spike", 0.75, null, 0.02)).toBe("75.0% vs 2.0%");
  });
});
