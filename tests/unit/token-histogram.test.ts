import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { binBounds, binOf, quantileFromBins } from "../../app/domain/token-histogram";

describe("token histogram", () => {
  it("puts every positive amount inside its bin's bounds", () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2_000_000_000 }), (n) => {
      const { low, high } = binBounds(binOf(n));
      return n >= low * (1 - 1e-9) && n < high * (1 + 1e-9);
    }));
  });

  it("puts zero and negative amounts in bin 0", () => {
    expect(binOf(0)).toBe(0);
    expect(binOf(-5)).toBe(0);
  });

  it("estimates a quantile within one bin width of the true value", () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 300 }), fc.constantFrom(0.5, 0.95), (values, q) => {
      const counts = new Map<number, number>();
      for (const v of values) counts.set(binOf(v), (counts.get(binOf(v)) ?? 0) + 1);
      const estimate = quantileFromBins([...counts].map(([bin, calls]) => ({ bin, calls })), q, Math.max(...values)) as number;
      const sorted = [...values].sort((a, b) => a - b);
      const truth = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
      return estimate <= truth * 2 ** 0.25 + 1 && estimate >= truth / 2 ** 0.25 - 1;
    }));
  });

  it("never reports a quantile above the exact max and nothing for no calls", () => {
    expect(quantileFromBins([{ bin: binOf(920), calls: 3 }], 0.95, 920)).toBe(920);
    expect(quantileFromBins([], 0.5)).toBeNull();
  });
});
