import { describe, expect, it } from "vitest";
import { ACTION_TYPE_NAMES } from "../../app/domain/action-types";
import {
  checkCsvHeader,
  csvRecordToEventInput,
  MAX_BATCH_EVENTS,
  parseUsageBatch,
  REQUIRED_USAGE_FIELDS,
  validateUsageEvent,
} from "../../app/domain/usage-event";

const USER = "6f1c2f1e-6b1a-4a55-9c61-1a1a1a1a1a1a";
const NOW = Date.parse("2025-06-01T12:00:00Z");
const minimal = { user_id: USER, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 3000 };

function problemsOf(input: unknown): Record<string, string> {
  const result = validateUsageEvent(input, NOW);
  if (result.ok) return {};
  return Object.fromEntries(result.problems.map((p) => [p.field, p.message]));
}

describe("validateUsageEvent", () => {
  it("accepts the four required fields and fills the table's defaults", () => {
    const result = validateUsageEvent(minimal, NOW);
    expect(result).toEqual({
      ok: true,
      event: { ...minimal, input_tokens: 0, output_tokens: 0, success: true, metadata: {}, reconciliation_status: "pending" },
    });
  });

  it("requires user_id, action_type, model_used and tokens_used", () => {
    expect(REQUIRED_USAGE_FIELDS).toEqual(["user_id", "action_type", "model_used", "tokens_used"]);
    expect(problemsOf({})).toEqual({ user_id: "is required", action_type: "is required", model_used: "is required", tokens_used: "is required" });
  });

  it.each([
    [{ tokens_used: -1 }, "tokens_used", "must be an integer ≥ 0"],
    [{ tokens_used: 2.5 }, "tokens_used", "must be an integer ≥ 0"],
    [{ tokens_used: "300" }, "tokens_used", "must be an integer ≥ 0"],
    [{ tokens_used: 2 ** 31 }, "tokens_used", "must be an integer ≤ 2147483647"],
    [{ user_id: "42" }, "user_id", "must be a UUID"],
    [{ success: "yes" }, "success", "must be true or false"],
    [{ metadata: [1, 2] }, "metadata", "must be a JSON object"],
    [{ metadata: { note: "a\u0000b" } }, "metadata", "must not contain NUL characters or invalid Unicode"],
    [{ route: "/x\ud800" }, "route", "must not contain NUL characters or invalid Unicode"],
    [{ event_id: "e".repeat(201) }, "event_id", "must be text of at most 200 characters"],
    [{ event_id: "" }, "event_id", "must not be empty"],
    [{ created_at: "2025-06-01 10:00" }, "created_at", "must be an ISO 8601 date-time with offset, e.g. 2025-01-31T12:00:00Z"],
    [{ created_at: "2025-06-01T10:00:00" }, "created_at", "must be an ISO 8601 date-time with offset, e.g. 2025-01-31T12:00:00Z"],
    [{ created_at: "2025-06-02T13:00:00Z" }, "created_at", "is more than 1 day in the future"],
    [{ created_at: "1999-12-31T23:59:59Z" }, "created_at", "is before 2000-01-01"],
    [{ calculated_cost_cents: -0.01 }, "calculated_cost_cents", "must be a number from 0 to 99999999"],
    [{ reconciliation_status: "done" }, "reconciliation_status", "must be one of pending, matched, discrepancy, not_applicable"],
    [{ reconciled_at: "2025-05-01T00:00:00Z" }, "reconciled_at", "must be set together with actual_cost_cents (both or neither)"],
  ])("refuses %j naming %s", (overrides, field, message) => {
    expect(problemsOf({ ...minimal, ...overrides })).toEqual({ [field]: message });
  });

  it("accepts an offset other than Z and a date up to one day ahead", () => {
    expect(validateUsageEvent({ ...minimal, created_at: "2025-06-02T11:00:00+02:00" }, NOW).ok).toBe(true);
    expect(validateUsageEvent({ ...minimal, created_at: "2025-06-02T11:59:59Z" }, NOW).ok).toBe(true);
  });

  it("names every unknown field and explains that ids are assigned by tokenboard", () => {
    const problems = problemsOf({ ...minimal, id: "x", colour: "red" });
    expect(Object.keys(problems)).toEqual(["id", "colour"]);
    expect(problems.id).toMatch(/tokenboard assigns ids; send event_id/);
    expect(problems.colour).toMatch(/^unknown field; allowed: user_id, action_type/);
  });

  it("reports every problem of an event, not only the first", () => {
    expect(Object.keys(problemsOf({ ...minimal, tokens_used: -1, user_id: "x", created_at: "2030-01-01T00:00:00Z", extra: 1 }))).toEqual([
      "extra",
      "user_id",
      "tokens_used",
      "created_at",
    ]);
  });

  it("accepts every registered action type and lists them all for an unknown one", () => {
    for (const name of ACTION_TYPE_NAMES) expect(validateUsageEvent({ ...minimal, action_type: name }, NOW).ok).toBe(true);
    const message = problemsOf({ ...minimal, action_type: "vibrational_analysis" }).action_type ?? "";
    expect(message).toBe(`unknown action type "vibrational_analysis"; allowed: ${ACTION_TYPE_NAMES.join(", ")}`);
  });

  it("refuses something that is not an object as a whole", () => {
    expect(validateUsageEvent([minimal], NOW)).toEqual({ ok: false, problems: [{ field: "", message: "must be a JSON object of token_usage fields" }] });
  });
});

describe("parseUsageBatch", () => {
  it("answers malformed for bodies that are not a batch of 1 to 1000 events", () => {
    expect(parseUsageBatch(null)).toMatchObject({ kind: "malformed" });
    expect(parseUsageBatch({})).toEqual({ kind: "malformed", message: 'events: is required: {"events":[…]}' });
    expect(parseUsageBatch({ events: [] })).toMatchObject({ kind: "malformed", message: expect.stringContaining("got 0") });
    expect(parseUsageBatch({ events: Array(MAX_BATCH_EVENTS + 1).fill(minimal) })).toMatchObject({ kind: "malformed", message: expect.stringContaining("got 1001") });
    expect(parseUsageBatch({ events: [minimal], dryRun: true })).toMatchObject({ kind: "malformed", message: expect.stringMatching(/^dryRun: unknown field/) });
  });

  it("collects every error of every event with its index and field", () => {
    const result = parseUsageBatch({ events: [minimal, { ...minimal, tokens_used: -3 }, "x", minimal] });
    expect(result).toEqual({
      kind: "invalid",
      errors: [
        { index: 1, message: "events[1].tokens_used: must be an integer ≥ 0" },
        { index: 2, message: "events[2]: must be a JSON object of token_usage fields" },
      ],
    });
  });

  it("returns the parsed events of a valid batch in order", () => {
    const result = parseUsageBatch({ events: [minimal, { ...minimal, tokens_used: 1 }] });
    expect(result.kind).toBe("ok");
    if (result.kind === "ok") expect(result.events.map((e) => e.tokens_used)).toEqual([3000, 1]);
  });
});

describe("CSV lines", () => {
  it("reads numbers, booleans and JSON from cell text and treats empty cells as absent", () => {
    expect(csvRecordToEventInput({ tokens_used: "42", success: "FALSE", metadata: '{"a":1}', route: "", model_used: "gpt-4o" })).toEqual({
      tokens_used: 42,
      success: false,
      metadata: { a: 1 },
      model_used: "gpt-4o",
    });
  });

  it("leaves unreadable cells as text so validation names the field", () => {
    const input = csvRecordToEventInput({ ...Object.fromEntries(Object.entries(minimal).map(([k, v]) => [k, String(v)])), tokens_used: "12abc", metadata: "{oops" });
    expect(problemsOf(input)).toEqual({ tokens_used: "must be an integer ≥ 0", metadata: "must be a JSON object" });
  });

  it("checks the header: unknown, repeated and missing required columns are each named", () => {
    expect(checkCsvHeader(["user_id", "action_type", "model_used", "tokens_used", "route"])).toEqual({
      ok: true,
      columns: ["user_id", "action_type", "model_used", "tokens_used", "route"],
    });
    const result = checkCsvHeader(["user_id", "user_id", "colour", "model_used"]);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.messages).toEqual([
        'column "user_id" appears twice',
        expect.stringMatching(/^column "colour": unknown field/),
        'missing required column "action_type"',
        'missing required column "tokens_used"',
      ]);
    }
  });
});
