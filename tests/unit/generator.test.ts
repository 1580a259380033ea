import { describe, expect, it } from "vitest";
import { ACTION_TYPES, getActionType } from "~/domain/action-types";
import { countOption } from "../../db/seed/cli-options";
import { copyLine } from "../../db/seed/copy";
import { UsageTally, billingHistory } from "../../db/seed/billing-history";
import { DEMO_PRICING, costCents } from "../../db/seed/profile";
import { Random } from "../../db/seed/random";
import { FAILURE_SPIKE_RATE, UNREGISTERED_TYPE, demoDays, makePlan, normalRows, plantedRows, rowsPerDay, type UsageRow } from "../../db/seed/usage-rows";
import { UUID_V7 } from "../support/uuid";

const NOW = new Date("2025-03-15T13:30:00Z");
const SHAPE = { users: 300, rows: 60_000, days: 30, seed: 11, now: NOW };
const plan = makePlan(SHAPE);
const rows: UsageRow[] = [...normalRows(plan, SHAPE.rows)];
const planted = plantedRows(plan);
const prices = new Map(DEMO_PRICING.map((p) => [p.model_name, p]));

describe("demo usage rows", () => {
  it("are the same for the same seed and now, and differ for another seed", () => {
    const again = [...normalRows(makePlan(SHAPE), 500)];
    const first = [...normalRows(plan, 500)];
    expect(again).toEqual(first);
    expect(plantedRows(makePlan(SHAPE)).cases).toEqual(planted.cases);
    const other = [...normalRows(makePlan({ ...SHAPE, seed: 12 }), 500)];
    expect(other.map((r) => r.id)).not.toEqual(first.map((r) => r.id));
  });

  it("produce exactly the requested count, in time order, inside the window ending at now", () => {
    expect(rows).toHaveLength(SHAPE.rows);
    const windowStart = plan.days[0]?.start ?? 0;
    const outOfOrder = rows.filter((row, i) => i > 0 && row.created_at < (rows[i - 1] as UsageRow).created_at);
    expect(outOfOrder).toEqual([]);
    expect(rows[0]?.created_at).toBeGreaterThanOrEqual(windowStart);
    expect(rows[rows.length - 1]?.created_at).toBeLessThan(NOW.getTime());
  });

  it("cover every registered type, each inside its expected range, on its registered routes", () => {
    const seen = new Set(rows.map((r) => r.action_type));
    for (const type of ACTION_TYPES) expect(seen, type.name).toContain(type.name);
    // Collected, then asserted once: an expect per row would take seconds.
    const violations = rows.flatMap((row) => {
      const type = getActionType(row.action_type);
      if (!type) return [`unregistered ${row.action_type}`];
      const problems: string[] = [];
      if (!type.routes.includes(row.route ?? "")) problems.push(`${row.action_type} on ${row.route}`);
      const range = type.expectedRange;
      if (range && (row.tokens_used < range.min || row.tokens_used > range.max)) problems.push(`${row.action_type} ${row.tokens_used}`);
      return problems;
    });
    expect(violations).toEqual([]);
  });

  it("charge fixed-cost types their override and give audio rows their seconds", () => {
    const images = rows.filter((r) => r.action_type === "image_generation");
    const transcriptions = rows.filter((r) => r.action_type === "transcription");
    const audio = rows.filter((r) => r.action_type === "audio_generation");
    expect(new Set(images.map((r) => r.tokens_used))).toEqual(new Set([25]));
    expect(new Set(transcriptions.map((r) => r.tokens_used))).toEqual(new Set([60]));
    expect([...audio, ...transcriptions].filter((r) => !(r.audio_seconds !== null && r.audio_seconds > 0))).toEqual([]);
  });

  it("split tokens into input and output that add up for token-unit model calls", () => {
    const textRows = rows.filter((r) => getActionType(r.action_type)?.unit === "tokens" && getActionType(r.action_type)?.category === "ai");
    expect(textRows.length).toBeGreaterThan(1000);
    expect(textRows.filter((r) => r.input_tokens + r.output_tokens !== r.tokens_used || r.input_tokens <= 0)).toEqual([]);
  });

  it("leave about 10% of costs to the pricing fallback and compute the rest from pricing", () => {
    const nulls = rows.filter((r) => r.calculated_cost_cents === null).length / rows.length;
    expect(nulls).toBeGreaterThan(0.08);
    expect(nulls).toBeLessThan(0.12);
    for (const row of rows.slice(0, 2000)) {
      if (row.calculated_cost_cents === null) continue;
      const expected = costCents(prices.get(row.model_used), { input: row.input_tokens, output: row.output_tokens, audioSeconds: row.audio_seconds });
      expect(row.calculated_cost_cents).toBeCloseTo(expected, 4);
    }
  });

  it("fail about 2% of calls, and 40% of one type's calls on the planted failure-spike day", () => {
    const spikeDay = plan.failureSpikeDay;
    const onSpike = (r: UsageRow) => r.created_at >= spikeDay.start && r.created_at < spikeDay.end && r.action_type === plan.failureSpikeType;
    const normal = rows.filter((r) => !onSpike(r));
    const failureRate = normal.filter((r) => !r.success).length / normal.length;
    expect(failureRate).toBeGreaterThan(0.015);
    expect(failureRate).toBeLessThan(0.025);
    const spike = rows.filter(onSpike);
    const spikeRate = spike.filter((r) => !r.success).length / spike.length;
    expect(spikeRate).toBeGreaterThan(FAILURE_SPIKE_RATE - 0.1);
    expect(rows.filter((r) => !r.success).every((r) => r.error_message !== null)).toBe(true);
  });

  it("have unique ids and event ids, ids ordered like their timestamps", () => {
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    const eventIds = rows.flatMap((r) => (r.event_id ? [r.event_id] : []));
    expect(eventIds.length).toBeGreaterThan(rows.length * 0.15);
    expect(new Set(eventIds).size).toBe(eventIds.length);
    const sample = rows.filter((_, i) => i % 97 === 0);
    for (let i = 1; i < sample.length; i++) {
      if ((sample[i] as UsageRow).created_at > (sample[i - 1] as UsageRow).created_at) expect((sample[i] as UsageRow).id > (sample[i - 1] as UsageRow).id).toBe(true);
    }
  });

  it("give a few users most of the traffic", () => {
    const perUser = new Map<string, number>();
    for (const row of rows) perUser.set(row.user_id, (perUser.get(row.user_id) ?? 0) + 1);
    const counts = [...perUser.values()].sort((a, b) => b - a);
    const top5Percent = counts.slice(0, Math.ceil(SHAPE.users * 0.05)).reduce((a, b) => a + b, 0);
    expect(top5Percent / rows.length).toBeGreaterThan(0.2);
  });
});

describe("planted outlier cases", () => {
  it("put calls below and above the range for every type with a range", () => {
    for (const type of ACTION_TYPES) {
      const range = type.expectedRange;
      if (!range || range.min === range.max) continue;
      const cases = planted.cases.rangeOutliers.filter((c) => c.action_type === type.name);
      expect(cases.filter((c) => c.position === "below" && c.tokens_used < range.min), type.name).toHaveLength(3);
      expect(cases.filter((c) => c.position === "above" && c.tokens_used > range.max), type.name).toHaveLength(3);
    }
  });

  it("record image rows whose tokens differ from the override, and a type on a route not registered for it", () => {
    expect(planted.cases.fixedCostMismatches.length).toBeGreaterThan(0);
    for (const mismatch of planted.cases.fixedCostMismatches) expect(mismatch.tokens_used).not.toBe(25);
    const wrong = planted.rows.filter((r) => planted.cases.wrongRoute.ids.includes(r.id));
    expect(wrong).toHaveLength(planted.cases.wrongRoute.ids.length);
    for (const row of wrong) expect(getActionType(row.action_type)?.routes).not.toContain(row.route);
  });

  it("include rows of the unregistered legacy type", () => {
    const legacy = planted.rows.filter((r) => r.action_type === UNREGISTERED_TYPE);
    expect(legacy).toHaveLength(planted.cases.unregistered.count);
    expect(getActionType(UNREGISTERED_TYPE)).toBeUndefined();
  });

  it("make one user's daily tokens jump far above their steady baseline on one recent day", () => {
    const spike = planted.cases.userSpike;
    expect(spike.baselineDailyTokens[0]).toBeGreaterThanOrEqual(14_000);
    expect(spike.baselineDailyTokens[1]).toBeLessThanOrEqual(60_000);
    expect(spike.dayTokens).toBeGreaterThan(2_000_000);
    expect(spike.dayTokens).toBeGreaterThan(spike.baselineDailyTokens[1] * 30);
    // The spike user makes no other traffic, so their baseline is exactly the planted one.
    expect(rows.some((r) => r.user_id === spike.user_id)).toBe(false);
  });
});

describe("demo days and volumes", () => {
  it("end at now and split a total over the days exactly", () => {
    const days = demoDays(NOW, 30);
    expect(days).toHaveLength(30);
    expect(days[29]?.end).toBe(NOW.getTime());
    expect(days[29]?.date).toBe("2025-03-15");
    const counts = rowsPerDay(new Random(1), days, 12_345);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(12_345);
  });
});

describe("demo billing history (seed-shaped token_transactions)", () => {
  const tally = new UsageTally();
  for (const row of [...rows, ...planted.rows]) tally.add(row);
  const window = { start: plan.days[0]?.start ?? 0, end: NOW.getTime() };
  const billing = billingHistory(5, plan.users, window, tally);
  const kinds = (kind: string) => billing.transactions.filter((t) => t.action_type === kind);

  it("is the same for the same seed", () => {
    expect(billingHistory(5, plan.users, window, tally)).toEqual(billing);
  });

  it("has monthly subscription grants that expire, some stored negative, and one still running at the end", () => {
    const grants = [...kinds("subscription_grant"), ...kinds("renewal_grant")];
    for (const grant of grants) expect(grant.expires_at! - grant.created_at).toBe(30 * 86_400_000);
    expect(grants.some((g) => g.tokens_used < 0)).toBe(true);
    expect(grants.some((g) => g.tokens_used > 0)).toBe(true);
    expect(grants.some((g) => g.expires_at! > window.end)).toBe(true);
    expect(kinds("trial_grant").length).toBeGreaterThan(0);
  });

  it("has purchases with the money paid, mostly USD and some EUR", () => {
    const purchases = [...kinds("token_pack_purchase"), ...kinds("pack_purchase")];
    expect(purchases.length).toBeGreaterThan(0);
    for (const p of purchases) expect(p.amount_paid_cents).toBeGreaterThan(0);
    const eur = purchases.filter((p) => p.currency === "EUR").length;
    expect(eur).toBeGreaterThan(0);
    expect(eur).toBeLessThan(purchases.length / 2);
  });

  it("has admin grants and deductions, manual adjustments of each sign, and legacy usage copies", () => {
    expect(kinds("admin_grant").length).toBeGreaterThan(0);
    expect(kinds("admin_deduct").length).toBeGreaterThan(0);
    expect(kinds("manual_adjustment").some((t) => t.tokens_used < 0)).toBe(true);
    expect(kinds("manual_adjustment").some((t) => t.tokens_used > 0)).toBe(true);
    expect(kinds("chat").length + kinds("blueprint").length + kinds("assessment").length).toBeGreaterThan(0);
  });

  it("has four households with active sharing members, and removed, pending and non-sharing ones", () => {
    expect(billing.households).toHaveLength(4);
    const members = billing.members.filter((m) => m.role === "member");
    expect(members.filter((m) => m.status === "active" && m.allow_shared_tokens).length).toBeGreaterThanOrEqual(8);
    expect(new Set(members.map((m) => m.status))).toEqual(new Set(["active", "removed", "pending"]));
    expect(members.some((m) => m.status === "active" && !m.allow_shared_tokens)).toBe(true);
  });
});

describe("seeded random and helpers", () => {
  it("makes valid v4 and time-ordered v7 UUIDs", () => {
    const random = new Random(3);
    expect(random.uuid()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const early = random.uuidAt(Date.UTC(2025, 0, 1));
    const late = random.uuidAt(Date.UTC(2025, 0, 1, 0, 0, 1));
    expect(early).toMatch(UUID_V7);
    expect(early < late).toBe(true);
    expect(early.replaceAll("-", "").slice(0, 12)).toBe(Date.UTC(2025, 0, 1).toString(16).padStart(12, "0"));
  });

  it("escapes COPY text fields", () => {
    expect(copyLine(["a\tb", null, true, 1.5, "c\\d\ne"])).toBe("a\\tb\t\\N\tt\t1.5\tc\\\\d\\ne\n");
  });

  it("reads counts written as 300000, 300_000, 300k or 10M and names the option otherwise", () => {
    const rows = countOption("rows");
    expect(rows.parse("300000")).toBe(300_000);
    expect(rows.parse("300_000")).toBe(300_000);
    expect(rows.parse("300k")).toBe(300_000);
    expect(rows.parse("10M")).toBe(10_000_000);
    const bad = rows.safeParse("ten");
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toContain("--rows");
    expect(countOption("days", 14).safeParse("7").success).toBe(false);
  });
});
