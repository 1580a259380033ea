import { describe, expect, it } from "vitest";
import { evaluateOutOfRange, rangesToCheck } from "../../../app/domain/outlier-rules/out-of-range";

const call = (actionType: string, tokens: number) => ({
  usageId: "11111111-1111-4111-8111-111111111111",
  userId: "22222222-2222-4222-8222-222222222222",
  actionType,
  route: "/api/viva/chat",
  tokens,
  createdAt: new Date("2025-03-04T23:30:00Z"),
});

describe("out_of_range rule", () => {
  it("fires on a call above its range and says by how much, absolute and relative", () => {
    const f = evaluateOutOfRange(call("chat_conversation", 12_000));
    expect(f?.rule).toBe("out_of_range");
    expect(f?.details).toMatchObject({ position: "above", distance: 7_000, ratioToBound: 2.4, min: 2_000, max: 5_000 });
    expect(f?.message).toBe("chat_conversation call used 12,000 tokens, 7,000 above the expected 2,000–5,000 (2.4× the maximum)");
    expect(f?.dedupeKey).toBe("out_of_range:11111111-1111-4111-8111-111111111111");
    expect(f?.day).toBe("2025-03-04");
  });

  it("fires on a call below its range with the share of the minimum", () => {
    const f = evaluateOutOfRange(call("assessment_scoring", 50));
    expect(f?.details).toMatchObject({ position: "below", distance: 150, ratioToBound: 0.25 });
    expect(f?.message).toContain("150 below the expected 200–500 (25.0% of the minimum)");
  });

  it("does not fire inside the range, on its bounds included", () => {
    expect(evaluateOutOfRange(call("chat_conversation", 2_000))).toBeNull();
    expect(evaluateOutOfRange(call("chat_conversation", 5_000))).toBeNull();
    expect(evaluateOutOfRange(call("chat_conversation", 3_500))).toBeNull();
  });

  it("never fires for variable types or unregistered types", () => {
    expect(evaluateOutOfRange(call("admin_grant", 10_000_000))).toBeNull();
    expect(evaluateOutOfRange(call("admin_deduct", 0))).toBeNull();
    expect(evaluateOutOfRange(call("vibrational_analysis", 10_000_000))).toBeNull();
  });

  it("leaves fixed-cost types with an override to override_mismatch but keeps character-priced audio", () => {
    const checked = rangesToCheck(new Set(["image_generation", "transcription", "audio_generation"])).map((r) => r.actionType);
    expect(checked).not.toContain("image_generation");
    expect(checked).not.toContain("transcription");
    expect(checked).toContain("audio_generation");
    expect(checked).not.toContain("admin_grant");
    expect(rangesToCheck(new Set()).map((r) => r.actionType)).toContain("image_generation");
  });
});
