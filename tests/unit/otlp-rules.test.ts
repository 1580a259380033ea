import { describe, expect, it } from "vitest";
import { actionTypeForSpan, type SpanActionMapping } from "~/domain/action-types";
import { isoFromUnixNanos } from "~/features/otlp/rules";

describe("actionTypeForSpan", () => {
  const mappings: SpanActionMapping[] = [
    { route: "/api/viva/chat", operation: "embeddings", actionType: "prompt_suggestions" },
    { route: "/api/transcribe", spanName: "ai.transcribe", actionType: "transcription" },
    { operation: "chat", actionType: "chat_conversation" },
  ];

  it("takes a mapping that names the span's route before the registry's route table", () => {
    expect(actionTypeForSpan({ operation: "embeddings", spanName: "embed", route: "/api/viva/chat" }, mappings)).toBe("prompt_suggestions");
  });

  it("takes the route table when the route has exactly one AI type", () => {
    expect(actionTypeForSpan({ operation: "chat", spanName: "chat", route: "/api/vision/generate" }, mappings)).toBe("vision_generation");
  });

  it("leaves a route with two AI types to the mappings", () => {
    expect(actionTypeForSpan({ operation: null, spanName: "ai.transcribe", route: "/api/transcribe" }, mappings)).toBe("transcription");
    expect(actionTypeForSpan({ operation: null, spanName: "other", route: "/api/transcribe" }, mappings)).toBeNull();
  });

  it("falls back to mappings without a route, and to null when none matches", () => {
    expect(actionTypeForSpan({ operation: "chat", spanName: "chat", route: "/unknown" }, mappings)).toBe("chat_conversation");
    expect(actionTypeForSpan({ operation: "embeddings", spanName: "embed", route: null }, mappings)).toBeNull();
  });
});

describe("isoFromUnixNanos", () => {
  it("keeps microseconds", () => {
    expect(isoFromUnixNanos("1767225600123456789")).toBe("2026-01-01T00:00:00.123456Z");
  });

  it("reads 0 as unset and passes an out-of-range value on for validation to refuse", () => {
    expect(isoFromUnixNanos("0")).toBeUndefined();
    expect(isoFromUnixNanos("99999999999999999999999")).toBe("99999999999999999999999");
    expect(isoFromUnixNanos("abc")).toBe("abc");
  });
});
