import { describe, expect, it } from "vitest";
import {
  ACTION_TYPE_NAMES,
  ACTION_TYPES,
  actionTypeSchema,
  actionTypesForRoute,
  classifyAgainstRange,
  defaultOverrides,
  formatExpectedRange,
  getActionType,
} from "../../app/domain/action-types";
import { constraintSql } from "../../app/models/action-type-sync.server";

describe("action-type registry", () => {
  it("holds the reference's 13 types plus transcription", () => {
    expect(ACTION_TYPES).toHaveLength(14);
    expect(ACTION_TYPE_NAMES).toContain("frequency_flip");
    expect(ACTION_TYPE_NAMES).toContain("transcription");
    expect(new Set(ACTION_TYPE_NAMES).size).toBe(ACTION_TYPE_NAMES.length);
  });

  it("carries the reference's expected ranges", () => {
    expect(getActionType("assessment_scoring")?.expectedRange).toEqual({ min: 200, max: 500 });
    expect(getActionType("blueprint_generation")?.expectedRange).toEqual({ min: 150_000, max: 300_000 });
    expect(getActionType("audio_generation")).toMatchObject({ unit: "characters", expectedRange: { min: 1, max: 100 } });
    expect(getActionType("admin_grant")?.expectedRange).toBeNull();
    expect(getActionType("admin_deduct")?.category).toBe("ledger");
  });

  it("derives the default overrides: image 25, audio 1, transcription 60", () => {
    expect(defaultOverrides()).toEqual([
      { actionType: "audio_generation", tokenValue: 1 },
      { actionType: "image_generation", tokenValue: 25 },
      { actionType: "transcription", tokenValue: 60 },
    ]);
  });

  it("the zod schema accepts every registered type and names the allowed ones for any other", () => {
    for (const name of ACTION_TYPE_NAMES) expect(actionTypeSchema.parse(name)).toBe(name);
    const result = actionTypeSchema.safeParse("vibrational_analysis");
    expect(result.success).toBe(false);
    const message = result.success ? "" : (result.error.issues[0]?.message ?? "");
    expect(message).toContain('unknown action type "vibrational_analysis"');
    for (const name of ACTION_TYPE_NAMES) expect(message).toContain(name);
  });

  it("knows which types a route may produce", () => {
    expect(actionTypesForRoute("/api/admin/users/adjust-tokens")).toEqual(["admin_grant", "admin_deduct"]);
    expect(actionTypesForRoute("/api/viva/flip-frequency")).toEqual(["frequency_flip"]);
    expect(actionTypesForRoute("/nowhere")).toEqual([]);
  });

  it("classifies amounts against a range, with the distance outside it", () => {
    const range = { min: 200, max: 500 };
    expect(classifyAgainstRange(range, 150)).toEqual({ position: "below", distance: 50 });
    expect(classifyAgainstRange(range, 200)).toEqual({ position: "within", distance: 0 });
    expect(classifyAgainstRange(range, 900)).toEqual({ position: "above", distance: 400 });
    expect(classifyAgainstRange(null, 9)).toEqual({ position: "variable", distance: 0 });
  });

  it("formats ranges for people", () => {
    expect(formatExpectedRange({ min: 150_000, max: 300_000 })).toBe("150,000–300,000");
    expect(formatExpectedRange({ min: 25, max: 25 })).toBe("25 (fixed)");
    expect(formatExpectedRange(null)).toBe("variable");
  });

  it("derives the CHECK constraint SQL, sorted and quoted", () => {
    expect(constraintSql(["b", "a", "o'k"])).toBe("CHECK (action_type = ANY (ARRAY['a'::text, 'b'::text, 'o''k'::text]))");
  });
});
