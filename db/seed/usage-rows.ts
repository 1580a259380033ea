/**
 * The demo usage rows, generated in time order without touching a database: normal traffic
 * inside every type's expected range, and the planted cases of every outlier kind in the spec.
 * Pure and deterministic (same seed and `now` → same rows), so it is unit-tested directly.
 */
import { ACTION_TYPES, getActionType, type ActionTypeDefinition } from "../../app/domain/action-types";
import { DEMO_PRICING, ERROR_MESSAGES, LEDGER_MODEL, costCents, makeUsers, normalTokens, pickModel, splitTokens, typeMix, type DemoUser, type ModelPrice } from "./profile";
import { Random, WeightedPicker, clippedLogNormal } from "./random";

export interface UsageRow {
  id: string;
  user_id: string;
  action_type: string;
  model_used: string;
  tokens_used: number;
  input_tokens: number;
  output_tokens: number;
  success: boolean;
  error_message: string | null;
  /** Milliseconds since the epoch. */
  created_at: number;
  calculated_cost_cents: number | null;
  audio_seconds: number | null;
  route: string | null;
  event_id: string | null;
}

export interface DemoShape {
  users: number;
  rows: number;
  days: number;
  seed: number;
  now: Date;
}

export interface DemoDay {
  /** UTC calendar date, YYYY-MM-DD. */
  date: string;
  start: number;
  /** Exclusive; the last day ends at `now`. */
  end: number;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Calls per UTC hour: quiet at night (Europe/Americas audience), peaks late morning and evening. */
const HOURLY_RHYTHM = [2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5.5, 6.5, 7, 7, 6.5, 6.5, 7, 7, 6.5, 6, 6, 6.5, 7, 6, 4.5, 3];

export const FAILURE_RATE = 0.02;
export const FAILURE_SPIKE_RATE = 0.4;
export const UNREGISTERED_TYPE = "vibrational_analysis";
const UNREGISTERED_ROUTE = "/api/viva/vibrational-analysis";
const COST_KNOWN_SHARE = 0.9;
const EVENT_ID_SHARE = 0.2;

/** `days` UTC calendar days, the last one (today) ending at `now`. */
export function demoDays(now: Date, days: number): DemoDay[] {
  const nowMs = now.getTime();
  const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
  const list: DemoDay[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const start = today - i * DAY_MS;
    list.push({ date: new Date(start).toISOString().slice(0, 10), start, end: Math.min(start + DAY_MS, nowMs) });
  }
  return list;
}

/** Share of a day's traffic that falls in [start, end) given the hourly rhythm. */
function rhythmCoverage(day: DemoDay): number {
  const total = HOURLY_RHYTHM.reduce((a, b) => a + b, 0);
  let covered = 0;
  HOURLY_RHYTHM.forEach((weight, hour) => {
    const hourStart = day.start + hour * HOUR_MS;
    const overlap = Math.max(0, Math.min(day.end, hourStart + HOUR_MS) - hourStart);
    covered += (weight * overlap) / HOUR_MS;
  });
  return covered / total;
}

/** Splits `total` rows over the days: weekly rhythm, a growth trend and some noise; sums exactly. */
export function rowsPerDay(random: Random, days: readonly DemoDay[], total: number): number[] {
  const weights = days.map((day, i) => {
    const weekday = new Date(day.start).getUTCDay();
    const weekend = weekday === 0 || weekday === 6 ? 0.7 : 1;
    const growth = 1 + (0.5 * i) / Math.max(1, days.length - 1);
    return weekend * growth * (0.9 + 0.2 * random.next()) * rhythmCoverage(day);
  });
  const sum = weights.reduce((a, b) => a + b, 0);
  const exact = weights.map((w) => (sum > 0 ? (w / sum) * total : 0));
  const counts = exact.map(Math.floor);
  let missing = total - counts.reduce((a, b) => a + b, 0);
  // Largest remainders get the rows that rounding down left over.
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (missing <= 0) break;
    counts[i] = (counts[i] as number) + 1;
    missing--;
  }
  return counts;
}

/** Sorted timestamps inside the day that follow the hourly rhythm. */
function timestampsForDay(random: Random, day: DemoDay, count: number): Float64Array {
  const hours = HOURLY_RHYTHM.map((weight, hour) => (day.start + hour * HOUR_MS < day.end ? weight : 0));
  const stamps = new Float64Array(count);
  if (count === 0) return stamps;
  const picker = new WeightedPicker(hours);
  for (let i = 0; i < count; i++) {
    const hourStart = day.start + picker.pick(random) * HOUR_MS;
    const span = Math.min(HOUR_MS, day.end - hourStart);
    stamps[i] = hourStart + Math.floor(random.next() * span);
  }
  return stamps.sort();
}

/** Everything the row generators share: users, pricing, days, and where planted cases go. */
export interface DemoPlan {
  shape: DemoShape;
  users: DemoUser[];
  days: DemoDay[];
  pricing: Map<string, ModelPrice>;
  spikeUserIndex: number;
  spikeDay: DemoDay;
  failureSpikeDay: DemoDay;
  failureSpikeType: string;
}

export function makePlan(shape: DemoShape, pricing: readonly ModelPrice[] = DEMO_PRICING): DemoPlan {
  if (shape.days < 14) throw new Error("days must be at least 14 (planted cases need two weeks of baseline)");
  if (shape.users < 2) throw new Error("users must be at least 2");
  const users = makeUsers(new Random(shape.seed).fork(1), shape.users);
  const days = demoDays(shape.now, shape.days);
  // Recent, complete UTC days, so that the spikes show on the overview's default range.
  const spikeDay = days[days.length - 3] as DemoDay;
  const failureSpikeDay = days[days.length - 5] as DemoDay;
  return {
    shape,
    users,
    days,
    pricing: new Map(pricing.map((p) => [p.model_name, p])),
    spikeUserIndex: Math.floor(users.length / 2),
    spikeDay,
    failureSpikeDay,
    failureSpikeType: "chat_conversation",
  };
}

interface RowSpec {
  user: DemoUser;
  /** How tokens, models and costs behave; its name is the row's action_type. */
  definition: ActionTypeDefinition;
  at: number;
  tokens: number;
  route: string;
  failureRate: number;
}

/** Builds one row: model, token split, cost (left null for some rows), failure, event id. */
function buildRow(random: Random, plan: DemoPlan, spec: RowSpec, serial: number): UsageRow {
  const model = spec.definition.category === "ledger" ? LEDGER_MODEL : pickModel(random, spec.definition);
  const split = splitTokens(random, spec.definition, spec.tokens);
  const failed = random.chance(spec.failureRate);
  const costKnown = random.chance(COST_KNOWN_SHARE);
  const withEventId = random.chance(EVENT_ID_SHARE);
  return {
    id: random.uuidAt(spec.at),
    user_id: spec.user.user_id,
    action_type: spec.definition.name,
    model_used: model,
    tokens_used: spec.tokens,
    input_tokens: split.input,
    output_tokens: split.output,
    success: !failed,
    error_message: failed ? random.pick(ERROR_MESSAGES) : null,
    created_at: spec.at,
    calculated_cost_cents: costKnown ? costCents(plan.pricing.get(model), split) : null,
    audio_seconds: split.audioSeconds,
    route: spec.route,
    event_id: withEventId ? `demo-${plan.shape.seed}-${plan.shape.now.getTime().toString(36)}-${serial}` : null,
  };
}

/**
 * Normal traffic: `count` rows in time order. Everything is inside its type's range; about
 * 2% of calls fail, except the planted failure spike (one type, one day).
 */
export function* normalRows(plan: DemoPlan, count: number): Generator<UsageRow> {
  const random = new Random(plan.shape.seed).fork(2);
  const userPicker = new WeightedPicker(plan.users.map((u, i) => (i === plan.spikeUserIndex ? 0 : u.activity)));
  const mix = typeMix();
  const typePicker = new WeightedPicker(mix.map((m) => m.weight));
  const perDay = rowsPerDay(random, plan.days, count);
  let serial = 0;
  for (const [d, day] of plan.days.entries()) {
    const stamps = timestampsForDay(random, day, perDay[d] as number);
    const spikeDay = day === plan.failureSpikeDay;
    for (const at of stamps) {
      const type = (mix[typePicker.pick(random)] as (typeof mix)[number]).type;
      yield buildRow(random, plan, {
        user: plan.users[userPicker.pick(random)] as DemoUser,
        definition: type,
        at,
        tokens: normalTokens(random, type),
        route: random.pick(type.routes),
        failureRate: spikeDay && type.name === plan.failureSpikeType ? FAILURE_SPIKE_RATE : FAILURE_RATE,
      }, serial++);
    }
  }
}

export interface RangeOutlier {
  id: string;
  action_type: string;
  tokens_used: number;
  position: "below" | "above";
  expected: { min: number; max: number };
}

/** What was planted where, stored in tokenboard.settings 'demo_planted' for tests and demos. */
export interface PlantedCases {
  seed: number;
  now: string;
  rangeOutliers: RangeOutlier[];
  fixedCostMismatches: { id: string; action_type: string; tokens_used: number; override: number }[];
  wrongRoute: { action_type: string; route: string; ids: string[] };
  unregistered: { action_type: string; route: string; count: number };
  userSpike: { user_id: string; email: string; day: string; dayTokens: number; baselineDailyTokens: [min: number, max: number] };
  failureSpike: { action_type: string; day: string; rate: number };
}

const RANGE_OUTLIERS_PER_SIDE = 3;
const FIXED_MISMATCH_TOKENS = [0, 1, 24, 26, 50, 100];
const WRONG_ROUTE_ROWS = 15;
const SPIKE_CALLS = 40;

/** The planted outlier cases, as rows plus the record of what they are. */
export function plantedRows(plan: DemoPlan): { rows: UsageRow[]; cases: PlantedCases } {
  const random = new Random(plan.shape.seed).fork(3);
  const rows: UsageRow[] = [];
  let serial = 0;
  const users = plan.users.filter((_, i) => i !== plan.spikeUserIndex);
  // Planted one-off rows avoid the first and last day: they are whole days in any zone.
  const inner = plan.days.slice(1, -1);
  const randomTime = () => {
    const day = random.pick(inner);
    return day.start + 8 * HOUR_MS + Math.floor(random.next() * 12 * HOUR_MS);
  };
  const add = (spec: Omit<RowSpec, "failureRate">, failureRate = 0) => {
    const row = buildRow(random, plan, { ...spec, failureRate }, serial++);
    row.event_id = row.event_id === null ? null : `planted-${row.event_id}`;
    rows.push(row);
    return row;
  };

  // 1. Calls far outside their type's range, both ways.
  const rangeOutliers: RangeOutlier[] = [];
  for (const type of ACTION_TYPES) {
    const range = type.expectedRange;
    if (range === null || range.min === range.max) continue;
    for (const position of ["below", "above"] as const) {
      for (let k = 0; k < RANGE_OUTLIERS_PER_SIDE; k++) {
        const tokens = position === "below"
          ? Math.floor(range.min * (0.05 + 0.45 * random.next()))
          : Math.ceil(range.max * (2 + 6 * random.next()));
        const row = add({ user: random.pick(users), definition: type, at: randomTime(), tokens, route: random.pick(type.routes) });
        rangeOutliers.push({ id: row.id, action_type: type.name, tokens_used: tokens, position, expected: range });
      }
    }
  }

  // 2. A fixed-cost type whose tokens differ from its override.
  const image = requireType("image_generation");
  const override = image.defaultOverride ?? 25;
  const fixedCostMismatches = FIXED_MISMATCH_TOKENS.map((tokens) => {
    const row = add({ user: random.pick(users), definition: image, at: randomTime(), tokens, route: random.pick(image.routes) });
    return { id: row.id, action_type: image.name, tokens_used: tokens, override };
  });

  // 3. A type on a route the registry lists for another type only.
  const chat = requireType("chat_conversation");
  const wrongRoute = "/api/vision/generate";
  const wrongRouteIds = Array.from({ length: WRONG_ROUTE_ROWS }, () =>
    add({ user: random.pick(users), definition: chat, at: randomTime(), tokens: normalTokens(random, chat), route: wrongRoute }).id);

  // 4. A legacy type the registry does not know (about 0.4% of traffic, as in an adopted database).
  const unregisteredCount = Math.max(12, Math.round(plan.shape.rows * 0.004));
  const legacy: ActionTypeDefinition = { ...chat, name: UNREGISTERED_TYPE, routes: [UNREGISTERED_ROUTE], expectedRange: { min: 800, max: 3_000 } };
  for (let k = 0; k < unregisteredCount; k++) {
    const tokens = clippedLogNormal(random, 800, 3_000);
    add({ user: random.pick(users), definition: legacy, at: randomTime(), tokens, route: UNREGISTERED_ROUTE }, FAILURE_RATE);
  }

  // 5. One user: steady chat every day, then one day far above their own baseline.
  const spikeUser = plan.users[plan.spikeUserIndex] as DemoUser;
  const refinement = requireType("vision_refinement");
  const daily: number[] = [];
  let spikeDayTokens = 0;
  for (const day of plan.days) {
    if (day.end - day.start < DAY_MS) continue;
    let tokens = 0;
    const calls = random.int(7, 12);
    for (let k = 0; k < calls; k++) {
      const at = day.start + 7 * HOUR_MS + Math.floor(random.next() * 14 * HOUR_MS);
      tokens += add({ user: spikeUser, definition: chat, at, tokens: normalTokens(random, chat), route: random.pick(chat.routes) }).tokens_used;
    }
    if (day === plan.spikeDay) spikeDayTokens = tokens;
    else daily.push(tokens);
  }
  for (let k = 0; k < SPIKE_CALLS; k++) {
    // Mid-day UTC, so the spike stays on one local day in zones from UTC-9 to UTC+9.
    const at = plan.spikeDay.start + 10 * HOUR_MS + Math.floor(random.next() * 4 * HOUR_MS);
    spikeDayTokens += add({ user: spikeUser, definition: refinement, at, tokens: random.int(45_000, 55_000), route: random.pick(refinement.routes) }).tokens_used;
  }

  return {
    rows,
    cases: {
      seed: plan.shape.seed,
      now: plan.shape.now.toISOString(),
      rangeOutliers,
      fixedCostMismatches,
      wrongRoute: { action_type: chat.name, route: wrongRoute, ids: wrongRouteIds },
      unregistered: { action_type: UNREGISTERED_TYPE, route: UNREGISTERED_ROUTE, count: unregisteredCount },
      userSpike: {
        user_id: spikeUser.user_id,
        email: spikeUser.email,
        day: plan.spikeDay.date,
        dayTokens: spikeDayTokens,
        baselineDailyTokens: [Math.min(...daily), Math.max(...daily)],
      },
      failureSpike: { action_type: plan.failureSpikeType, day: plan.failureSpikeDay.date, rate: FAILURE_SPIKE_RATE },
    },
  };
}

function requireType(name: string): ActionTypeDefinition {
  const type = getActionType(name);
  if (!type) throw new Error(`the demo data needs action type ${name} in the registry`);
  return type;
}
