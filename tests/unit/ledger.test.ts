import { describe, expect, it } from "vitest";
import { checkStaffAdjustment, consumptionOrder, initialRemaining, ledgerRequestSchema, planDebit, type OpenGrant } from "~/domain/ledger";
import { parseWith } from "~/lib/validation";

const day = (n: number) => new Date(Date.UTC(2026, 0, n));

describe("grant consumption order", () => {
  const grants: OpenGrant[] = [
    { id: 3, remaining: 100, expiresAt: day(20) },
    { id: 1, remaining: 50, expiresAt: day(10) },
    { id: 2, remaining: 70, expiresAt: day(10) },
  ];

  it("orders grants by soonest expiry, then by age", () => {
    expect(consumptionOrder(grants).map((g) => g.id)).toEqual([1, 2, 3]);
  });

  it("takes a debit from the grants that expire soonest before later ones", () => {
    expect(planDebit(grants, 130)).toEqual([{ id: 1, take: 50 }, { id: 2, take: 70 }, { id: 3, take: 10 }]);
  });

  it("leaves the rest of a debit larger than all grants to the permanent balance", () => {
    expect(planDebit(grants, 1_000).reduce((s, c) => s + c.take, 0)).toBe(220);
  });

  it("lets a new expiring grant pay off debt left by a forced deduction first", () => {
    // balance -100 with no open grants: permanent part is -100.
    expect(initialRemaining(-100, [], 500)).toBe(400);
    expect(initialRemaining(-600, [], 500)).toBe(0);
    expect(initialRemaining(300, grants, 500)).toBe(500);
  });
});

describe("who may adjust", () => {
  it("refuses analysts", () => {
    expect(checkStaffAdjustment("analyst", 1, 10_000).ok).toBe(false);
  });

  it("lets support adjust up to the limit and tells them to ask an admin above it", () => {
    expect(checkStaffAdjustment("support", 10_000, 10_000).ok).toBe(true);
    const refused = checkStaffAdjustment("support", 10_001, 10_000);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.message).toMatch(/at most 10,000 tokens.*Ask an admin/);
  });

  it("does not cap admins but only admins may force", () => {
    expect(checkStaffAdjustment("admin", 5_000_000, 10_000, true).ok).toBe(true);
    expect(checkStaffAdjustment("support", 10, 10_000, true).ok).toBe(false);
  });
});

describe("ledger API body", () => {
  const valid = { user_id: "6f1d1a8e-2b0a-4d55-9a4e-0d6c0f1b7a10", amount: 10, kind: "grant", reason: "goodwill", idempotency_key: "key-00000001" };

  it("accepts the Contract's shape", () => {
    expect(parseWith(ledgerRequestSchema, valid).ok).toBe(true);
  });

  it.each([
    ["amount", { amount: -5 }],
    ["amount", { amount: 1.5 }],
    ["amount", { amount: "10" }],
    ["kind", { kind: "steal" }],
    ["user_id", { user_id: "nope" }],
    ["reason", { reason: "" }],
    ["idempotency_key", { idempotency_key: undefined }],
  ])("names the field %s when it is wrong", (field, change) => {
    const result = parseWith(ledgerRequestSchema, { ...valid, ...change });
    expect(result.ok).toBe(false);
    expect(!result.ok && Object.keys(result.errors)).toContain(field);
  });
});
