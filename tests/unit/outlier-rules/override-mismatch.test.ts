import { describe, expect, it } from "vitest";
import { evaluateOverrideMismatch, isFixedCostType } from "../../../app/domain/outlier-rules/override-mismatch";

const call = (actionType: string, tokens: number, override: number) => ({
  usageId: "11111111-1111-4111-8111-111111111111",
  userId: "22222222-2222-4222-8222-222222222222",
  actionType,
  route: null,
  tokens,
  override,
  createdAt: new Date("2025-03-04T10:00:00Z"),
});

describe("override_mismatch rule", () => {
  it("fires when a fixed-cost call charged more than its override, with the difference", () => {
    const f = evaluateOverrideMismatch(call("image_generation", 1_250, 25));
    expect(f?.observed).toBe(1_250);
    expect(f?.expectedLow).toBe(25);
    expect(f?.details).toMatchObject({ difference: 1_225, ratio: 50 });
    expect(f?.message).toBe("image_generation is fixed at 25 tokens by its override, but this call charged 1,250 (+1,225, 50×)");
  });

  it("fires when it charged less, and when the override is zero", () => {
    expect(evaluateOverrideMismatch(call("transcription", 30, 60))?.details).toMatchObject({ difference: -30, ratio: 0.5 });
    expect(evaluateOverrideMismatch(call("transcription", 30, 0))?.details).toMatchObject({ difference: 30, ratio: null });
  });

  it("does not fire when the call equals its override", () => {
    expect(evaluateOverrideMismatch(call("image_generation", 25, 25))).toBeNull();
  });

  it("treats character-priced audio as not fixed-cost", () => {
    expect(isFixedCostType("audio_generation")).toBe(false);
    expect(evaluateOverrideMismatch(call("audio_generation", 80, 1))).toBeNull();
    expect(isFixedCostType("image_generation")).toBe(true);
  });
});
