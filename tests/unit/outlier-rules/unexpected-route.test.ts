import { describe, expect, it } from "vitest";
import { evaluateUnexpectedRoute } from "../../../app/domain/outlier-rules/unexpected-route";

const group = (actionType: string, route: string) => ({
  actionType,
  route,
  day: "2025-03-04",
  calls: 14,
  tokens: 52_000,
  firstAt: new Date("2025-03-04T08:00:00Z"),
});

describe("unexpected_route rule", () => {
  it("fires for a registered type on a route the registry does not list for it", () => {
    const f = evaluateUnexpectedRoute(group("chat_conversation", "/api/vision/chat"));
    expect(f?.dedupeKey).toBe("unexpected_route:chat_conversation:/api/vision/chat:2025-03-04");
    expect(f?.observed).toBe(14);
    expect(f?.message).toBe(
      "chat_conversation came from /api/vision/chat, which the registry does not list for it (expected /api/viva/chat): 14 calls, 52,000 tokens on 2025-03-04 (UTC)",
    );
  });

  it("does not fire on any of a type's listed routes", () => {
    expect(evaluateUnexpectedRoute(group("vision_generation", "/api/vision/generate"))).toBeNull();
    expect(evaluateUnexpectedRoute(group("vision_generation", "/api/vision/chat"))).toBeNull();
    expect(evaluateUnexpectedRoute(group("audio_generation", "/api/transcribe"))).toBeNull();
  });

  it("leaves unregistered types to their own rule", () => {
    expect(evaluateUnexpectedRoute(group("vibrational_analysis", "/api/anything"))).toBeNull();
  });
});
