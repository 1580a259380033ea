import { describe, expect, it } from "vitest";
import { chargedTokens, marginBy, nearestUtcMonth, pricePerTokenCents, rollForwardHolds, runningBalance, type UsageCostFact } from "~/features/money/rules";

const fact = (over: Partial<UsageCostFact>): UsageCostFact => ({ action_type: "chat_conversation", model: "gpt-4o-mini", calls: 10, failures: 2, ok_tokens: 8_000, cost_cents: 5, override: null, ...over });

describe("money rules", () => {
  it("checks the roll-forward identity exactly", () => {
    const row = { opening_balance: 100, purchased: 50, granted: 25, charged: 70, deducted: 5, expired: 10, closing_balance: 90 };
    expect(rollForwardHolds(row)).toBe(true);
    expect(rollForwardHolds({ ...row, closing_balance: 91 })).toBe(false);
  });

  it("prices a token only when something was sold for money", () => {
    expect(pricePerTokenCents(1_000, 1_000_000)).toBe(0.001);
    expect(pricePerTokenCents(0, 1_000)).toBeNull();
    expect(pricePerTokenCents(500, 0)).toBeNull();
  });

  it("charges successful calls at the override, else their tokens, and ledger-category or unknown types nothing", () => {
    expect(chargedTokens(fact({}))).toBe(8_000);
    expect(chargedTokens(fact({ override: 25 }))).toBe(200);
    expect(chargedTokens(fact({ action_type: "admin_grant" }))).toBe(0);
    expect(chargedTokens(fact({ action_type: "not_in_registry" }))).toBe(0);
  });

  it("sums value, cost and margin per key, largest charge first, and no value without a price", () => {
    const facts = [fact({}), fact({ model: "gpt-4o", ok_tokens: 2_000, cost_cents: 7 }), fact({ action_type: "image_generation", model: "dall-e-3", override: 25, calls: 4, failures: 0, cost_cents: 16 })];
    expect(marginBy(facts, "action_type", 0.001)).toEqual([
      { key: "chat_conversation", calls: 20, charged_tokens: 10_000, value_cents: 10, cost_cents: 12, margin_cents: -2 },
      { key: "image_generation", calls: 4, charged_tokens: 100, value_cents: 0.1, cost_cents: 16, margin_cents: -15.9 },
    ]);
    expect(marginBy(facts, "model", null).map((r) => [r.key, r.value_cents, r.margin_cents])).toEqual([["gpt-4o-mini", null, null], ["gpt-4o", null, null], ["dall-e-3", null, null]]);
  });

  it("carries the balance over days without entries and shows debits as positive flows", () => {
    const days = runningBalance(100, [{ day: "2026-01-02", grant: 50, purchase: 0, usage: -30, correction: 5, deduct: -10, expiry: -1 }], "2026-01-01", "2026-01-03");
    expect(days).toEqual([
      { date: "2026-01-01", granted: 0, purchased: 0, charged: 0, deducted: 0, expired: 0, balance: 100 },
      { date: "2026-01-02", granted: 50, purchased: 0, charged: 25, deducted: 10, expired: 1, balance: 114 },
      { date: "2026-01-03", granted: 0, purchased: 0, charged: 0, deducted: 0, expired: 0, balance: 114 },
    ]);
  });

  it("finds the UTC month boundary nearest to a zone's month start, and the side it lies on", () => {
    // New York: 1 March 00:00 EST is 05:00Z, after the boundary.
    expect(nearestUtcMonth(new Date("2026-03-01T05:00:00Z"))).toEqual({ month: "2026-03-01", instant: new Date("2026-03-01T00:00:00Z"), sign: 1 });
    // Chatham: 1 February 00:00 (+13:45) is 10:15Z on 31 January, before it.
    expect(nearestUtcMonth(new Date("2026-01-31T10:15:00Z"))).toEqual({ month: "2026-02-01", instant: new Date("2026-02-01T00:00:00Z"), sign: -1 });
    expect(nearestUtcMonth(new Date("2026-02-01T00:00:00Z"))).toMatchObject({ month: "2026-02-01", sign: 0 });
  });
});
