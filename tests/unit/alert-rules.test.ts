import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { balanceCrossing, retryDelayMs, RETRY_CAP_MS, slackBody, type AlertMessage, type BalanceSide } from "../../app/features/alerts/rules";

/** Counts crossings of the threshold directly from the sequence, as a person would. */
function expectedCrossings(balances: number[], threshold: number): { down: number; up: number } {
  let below = false;
  let down = 0;
  let up = 0;
  for (const balance of balances) {
    if (!below && balance < threshold) {
      below = true;
      down += 1;
    } else if (below && balance >= threshold) {
      below = false;
      up += 1;
    }
  }
  return { down, up };
}

describe("balance crossings", () => {
  it("raise exactly one alert per downward crossing and one recovery per upward crossing, for any sequence", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5_000, max: 5_000 }), { maxLength: 200 }), fc.integer({ min: 0, max: 3_000 }), (balances, threshold) => {
        let side: BalanceSide | undefined;
        const alerts: string[] = [];
        for (const balance of balances) {
          const result = balanceCrossing(side, balance, threshold);
          side = result.side;
          if (result.alert) alerts.push(result.alert);
        }
        const expected = expectedCrossings(balances, threshold);
        expect(alerts.filter((a) => a === "balance.low")).toHaveLength(expected.down);
        expect(alerts.filter((a) => a === "balance.recovered")).toHaveLength(expected.up);
        // They alternate, starting with a low: never two lows without a recovery between them.
        alerts.forEach((alert, i) => expect(alert).toBe(i % 2 === 0 ? "balance.low" : "balance.recovered"));
      }),
      { numRuns: 500 },
    );
  });

  it("treats a balance equal to the threshold as not below it", () => {
    expect(balanceCrossing(undefined, 1000, 1000)).toEqual({ side: "above", alert: null });
    expect(balanceCrossing(undefined, 999, 1000)).toEqual({ side: "below", alert: "balance.low" });
    expect(balanceCrossing("below", 1000, 1000)).toEqual({ side: "above", alert: "balance.recovered" });
  });
});

describe("retry schedule", () => {
  it("doubles from 30 s, is capped at an hour, and jitters by at most 20 %", () => {
    expect(retryDelayMs(1, 0.5)).toBe(30_000);
    expect(retryDelayMs(2, 0.5)).toBe(60_000);
    expect(retryDelayMs(30, 0.5)).toBe(RETRY_CAP_MS);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, random) => {
        const base = Math.min(RETRY_CAP_MS, 30_000 * 2 ** (attempt - 1));
        const delay = retryDelayMs(attempt, random);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(delay).toBeLessThanOrEqual(Math.ceil(base * 1.2));
      }),
    );
  });

  it("keeps retrying for at least 24 hours: the delays before the cap add up to well under a day", () => {
    let elapsed = 0;
    let attempts = 0;
    while (elapsed < 24 * 3_600_000) {
      attempts += 1;
      elapsed += retryDelayMs(attempts, 1 - Number.EPSILON);
    }
    expect(attempts).toBeGreaterThan(20);
  });
});

describe("Slack message", () => {
  const message: AlertMessage = { id: "a1", type: "balance.low", created_at: "2026-12-08T00:00:00.000Z", user_id: "u1", title: "Balance below threshold", text: "User <u1> has 5 tokens", path: "/users/u1", details: {} };

  it("has a fallback text, blocks, and a button linking back to the page", () => {
    const body = slackBody(message, "https://tb.example.com/base");
    expect(body.text).toContain("Balance below threshold");
    const blocks = body.blocks as { type: string; elements?: { url?: string }[]; text?: { text: string } }[];
    expect(blocks.map((b) => b.type)).toEqual(["header", "section", "context", "actions"]);
    expect(blocks[1]?.text?.text).toBe("User &lt;u1&gt; has 5 tokens");
    expect(blocks[3]?.elements?.[0]?.url).toBe("https://tb.example.com/base/users/u1");
  });
});
