import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTION_TYPE_NAMES } from "../../app/domain/action-types";
import { registerApiKey } from "../../app/lib/auth.server";
import { adjustBalance } from "../../app/models/ledger.server";
import { createStaff } from "../../app/models/staff.server";
import { importUsageCsv, UsageImportError } from "../../app/models/usage-import.server";
import { action as accountAction } from "../../app/routes/account/route";
import { action as loginAction } from "../../app/routes/login/route";
import { action as resetAction } from "../../app/routes/reset/route";
import { action as logoutAction } from "../../app/routes/logout/route";
import { action as outliersAction } from "../../app/routes/outliers/route";
import { action as overridesAction } from "../../app/routes/overrides/route";
import { action as staffAction } from "../../app/routes/staff/route";
import { action as userAction } from "../../app/routes/user/route";
import { action as usageApiAction } from "../../app/routes/api.v1.usage/route";
import { action as ledgerApiAction } from "../../app/routes/api.v1.ledger/route";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, TEST_PASSWORD, type TestStaff } from "../support/staff";

/**
 * Property-based fuzzing of every write path: the form actions, the two write APIs and the CSV
 * import. Whatever arrives: never a 500, never SQL or a stack trace in the answer, and a
 * refused request writes nothing at all (every table a write could touch is digested before
 * and after each call). Accepted requests may write; they are checked for consistency.
 */
type Action = (args: { request: Request; params: Record<string, string>; context: object }) => Promise<unknown>;

const WATCHED = [
  "token_usage", "ledger_entries", "token_balances", "audit_log", "ai_action_token_overrides", "override_history",
  "staff_users", "staff_sessions", "login_attempts", "api_keys", "outlier_flags", "app_users", "settings",
  "login_throttles", "staff_password_resets",
] as const;
type Watched = (typeof WATCHED)[number];
type State = Record<Watched, { n: number; digest: string | null }>;

const LEAK = /\bat [\w.<>]+ \(|node_modules|syntax error at|violates|relation "|SELECT .* FROM|INSERT INTO|duplicate key|invalid input syntax|\bpg_|stack/i;
const INGEST_KEY = "fuzz-ingest-key-0123456789abcdef";
const LEDGER_KEY = "fuzz-ledger-key-0123456789abcdef";
const USER = "00000000-0000-4000-8000-0000000000f1";

let t: TestDatabase;
let admin: TestStaff;
let support: TestStaff;
let analyst: TestStaff;
let targets: string[];
let flagId: number;

/** A row as digested: an API key's last_used_at is written whenever the key is presented, also on a refused call (by design). */
const ROW = sql`(to_jsonb(r) - 'last_used_at')::text`;

async function state(): Promise<State> {
  const parts = WATCHED.map((table) => sql`SELECT ${table}::text AS t, count(*)::int AS n, md5(string_agg(${ROW}, E'\n' ORDER BY ${ROW})) AS digest FROM ${sql.table(table)} r`);
  const r = await sql<{ t: Watched; n: number; digest: string | null }>`${sql.join(parts, sql` UNION ALL `)}`.execute(t.db);
  return Object.fromEntries(r.rows.map((row) => [row.t, { n: row.n, digest: row.digest }])) as State;
}

function changed(before: State, after: State): Watched[] {
  return WATCHED.filter((table) => before[table].digest !== after[table].digest || before[table].n !== after[table].n);
}

interface Outcome {
  status: number;
  body: string;
  location: string | null;
}

async function outcome(run: () => Promise<unknown>): Promise<Outcome> {
  try {
    const value = await run();
    if (value instanceof Response) return { status: value.status, body: await value.clone().text(), location: value.headers.get("location") };
    const init = (value as { init?: { status?: number } } | null)?.init;
    const data = (value as { type?: string; data?: unknown } | null)?.type === "DataWithResponseInit" ? (value as { data: unknown }).data : value;
    return { status: init?.status ?? 200, body: JSON.stringify(data ?? null), location: null };
  } catch (thrown) {
    if (thrown instanceof Response) return { status: thrown.status, body: await thrown.text(), location: thrown.headers.get("location") };
    const data = thrown as { type?: string; data?: unknown; init?: { status?: number } };
    if (data?.type === "DataWithResponseInit") return { status: data.init?.status ?? 500, body: JSON.stringify(data.data), location: null };
    return { status: 500, body: thrown instanceof Error ? `${thrown.message}\n${thrown.stack}` : String(thrown), location: null };
  }
}

/** Refused: an error status, or sent to log in. */
const refused = (o: Outcome) => o.status >= 400 || (o.location?.startsWith("/login") ?? false);

function checkClean(label: string, o: Outcome): void {
  expect(o.status, `${label} → ${o.status}: ${o.body.slice(0, 400)}`).toBeLessThan(500);
  expect(o.body, label).not.toMatch(LEAK);
}

// --- arbitraries -------------------------------------------------------------------------

const nasty = fc.constantFrom(
  "", " ", "0", "-1", "1.5", "1e309", "99999999999999999999", "NaN", "Infinity", "0x10", "2026-02-30", "9999-12-31", "1999-01-01",
  "'; DROP TABLE token_usage; --", "%", "\\", "\u0000", "a\u0000b", "<script>alert(1)</script>", "😀", "x".repeat(3000), "on", "off",
  "true", "null", "undefined", "[object Object]", "not-a-uuid", "lone \ud800 surrogate", "ends with \udc00", USER, "00000000-0000-0000-0000-000000000000", "//evil.example", "/\\evil",
);
const anyText = fc.oneof(nasty, fc.string({ maxLength: 30 }), fc.string({ unit: "binary", maxLength: 12 }));
const field = <T extends string>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 14, arbitrary: valid as fc.Arbitrary<string> }, { weight: 1, arbitrary: nasty }, { weight: 1, arbitrary: anyText });
const reason = fc.oneof(fc.constantFrom("customer refund for outage", "ok", "   ", "support ticket 4411"), fc.string({ maxLength: 20 }));
const idemKey = fc.oneof(fc.uuid(), fc.string({ minLength: 0, maxLength: 12 }));

/** Each known field (usually valid, sometimes hostile, sometimes left out) plus a few unknown ones. */
function form(fields: Record<string, fc.Arbitrary<string>>) {
  const names = Object.keys(fields);
  return fc
    .tuple(fc.record(fields), fc.array(fc.constantFrom(...names), { maxLength: 2 }), fc.boolean(), fc.dictionary(fc.string({ maxLength: 8 }), anyText, { maxKeys: 2 }))
    .map(([known, dropped, drop, extra]) => {
      const out: Record<string, string> = { ...extra, ...known };
      if (drop) for (const name of dropped) delete out[name];
      return out;
    });
}

function formBody(values: Record<string, string>): URLSearchParams {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) body.append(k, v);
  return body;
}

const who = () => fc.constantFrom<"admin" | "support" | "analyst" | "none">("admin", "admin", "support", "analyst", "none");
const session = (role: "admin" | "support" | "analyst" | "none"): TestStaff | null => (role === "admin" ? admin : role === "support" ? support : role === "analyst" ? analyst : null);

// --- setup -------------------------------------------------------------------------------

beforeAll(async () => {
  t = await createTestDatabase();
  admin = await staffSession(t.db, "admin");
  support = await staffSession(t.db, "support");
  analyst = await staffSession(t.db, "analyst");
  targets = [];
  for (const role of ["support", "analyst"] as const) {
    targets.push((await createStaff(t.db, { id: null, label: "test" }, { email: `target-${role}@test.local`, password: TEST_PASSWORD, role })).id);
  }
  await registerApiKey(t.db, "fuzz ingest", "ingest", INGEST_KEY);
  await registerApiKey(t.db, "fuzz ledger", "ledger", LEDGER_KEY);
  await adjustBalance(t.db, { id: null, label: "test" }, { userId: USER, kind: "grant", amount: 5_000, reason: "starting balance", idempotencyKey: "fuzz-start-0001" });
  await sql`INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, created_at) SELECT ${USER}::uuid, 'chat_conversation', 'gpt-4o', 3000 + g, now() - (g || ' hours')::interval FROM generate_series(1, 50) g`.execute(t.db);
  const flag = await sql<{ id: number }>`
    INSERT INTO tokenboard.outlier_flags (rule, dedupe_key, action_type, user_id, observed, message, occurred_at)
    VALUES ('out_of_range', 'fuzz-flag-1', 'chat_conversation', ${USER}, 12000, 'planted for fuzzing', now()) RETURNING id`.execute(t.db);
  flagId = flag.rows[0]!.id;
});
afterAll(async () => t?.drop());

// --- form actions ------------------------------------------------------------------------

interface FormCase {
  name: string;
  action: Action;
  path: string;
  params?: fc.Arbitrary<Record<string, string>>;
  fields: () => Record<string, fc.Arbitrary<string>>;
  /** Tables a refused request may still write by design. */
  refusalMayWrite?: (o: Outcome) => Watched[];
  numRuns?: number;
  /** The run must also reach the write (so the refusals are not all the property saw). */
  someAccepted?: boolean;
}

const FORMS: FormCase[] = [
  {
    name: "outliers: acknowledge",
    someAccepted: true,
    action: outliersAction as Action,
    path: "/outliers",
    fields: () => ({
      intent: field(fc.constantFrom("acknowledge")),
      id: field(fc.oneof(fc.constant(String(flagId)), fc.nat({ max: 1_000_000 }).map(String), fc.constantFrom("9223372036854775807", "9223372036854775808", "18446744073709551616"))),
      note: field(fc.string({ minLength: 1, maxLength: 60 })),
    }),
  },
  {
    name: "overrides: change a value",
    someAccepted: true,
    action: overridesAction as Action,
    path: "/overrides",
    fields: () => ({
      action_type: field(fc.constantFrom(...ACTION_TYPE_NAMES, "vibrational_analysis", "no_such_type")),
      value: field(fc.integer({ min: -5, max: 100_000 }).map(String)),
      reason: field(reason),
    }),
  },
  {
    name: "staff: create, role, disable, enable",
    someAccepted: true,
    action: staffAction as Action,
    path: "/staff",
    numRuns: 60,
    fields: () => ({
      intent: field(fc.constantFrom("create", "role", "disable", "enable", "unlock", "reset_link")),
      email: field(fc.emailAddress()),
      name: field(fc.string({ maxLength: 20 })),
      role: field(fc.constantFrom("admin", "support", "analyst", "root")),
      password: field(fc.string({ minLength: 10, maxLength: 20 })),
      staff_id: field(fc.constantFrom(...targets, randomUUID())),
    }),
  },
  {
    name: "user: grant or deduct (confirm and apply)",
    someAccepted: true,
    action: userAction as Action,
    path: `/users/${USER}`,
    params: fc.constantFrom({ userId: USER }, { userId: USER }, { userId: USER }, { userId: randomUUID() }, { userId: "not-a-uuid" }, { userId: "" }),
    fields: () => ({
      intent: field(fc.constantFrom("confirm", "apply", "apply")),
      kind: field(fc.constantFrom("grant", "deduct")),
      amount: field(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 12_000 }) }, { weight: 1, arbitrary: fc.integer({ min: -10, max: 2_000_000_000 }) }).map(String)),
      reason: field(fc.oneof({ weight: 6, arbitrary: fc.constantFrom("customer refund for outage", "support ticket 4411") }, { weight: 1, arbitrary: reason })),
      idempotency_key: field(fc.oneof({ weight: 6, arbitrary: fc.uuid() }, { weight: 1, arbitrary: idemKey })),
      expires_on: field(fc.constantFrom("", "", "", "2020-01-01", "2099-12-31", "2026-13-40", "2026-13-45", "0000-01-01", "9999-12-31", "2026-02-30")),
      force: field(fc.constantFrom("on")),
    }),
  },
  {
    name: "login",
    someAccepted: true,
    action: loginAction as Action,
    path: "/login",
    numRuns: 30,
    fields: () => ({
      // Not the sessions' own staff: a login drops the session it was sent with (fixation).
      email: field(fc.oneof(fc.constantFrom("target-support@test.local", "target-analyst@test.local", "nobody@test.local"), fc.emailAddress())),
      password: field(fc.constantFrom(TEST_PASSWORD, "wrong password")),
      redirectTo: field(fc.constantFrom("/", "/users", "//evil.example", "https://evil.example/", "/\\evil.example")),
    }),
    // A wrong password is recorded (throttling) and, for a staff email, audited: by design.
    refusalMayWrite: (o) => (o.status === 401 ? ["login_attempts", "audit_log", "login_throttles"] : []),
  },
  {
    name: "account: password, time zone",
    someAccepted: true,
    action: accountAction as Action,
    path: "/account",
    numRuns: 40,
    fields: () => ({
      intent: field(fc.constantFrom("password", "timezone")),
      current_password: field(fc.constantFrom(TEST_PASSWORD, "wrong password")),
      // An accepted change keeps the sessions' password, so the other cases still log in.
      new_password: field(fc.constantFrom(TEST_PASSWORD, "short")),
      confirm_password: field(fc.constantFrom(TEST_PASSWORD, "something else")),
      timezone: field(fc.constantFrom("UTC", "Europe/Berlin", "Mars/Olympus", "")),
    }),
    // A wrong current password counts as a failed login (throttling): by design.
    refusalMayWrite: (o) => (o.status === 422 || o.status === 429 ? ["login_throttles"] : []),
  },
  {
    name: "reset: set a password through a link",
    action: resetAction as Action,
    path: "/reset/x",
    numRuns: 20,
    params: fc.record({ token: fc.oneof(fc.constant("A".repeat(43)), fc.string({ maxLength: 50 })) }),
    fields: () => ({
      new_password: field(fc.constantFrom("a long new password", "short")),
      confirm_password: field(fc.constantFrom("a long new password", "other")),
    }),
  },
  {
    name: "logout",
    action: logoutAction as Action,
    path: "/logout",
    numRuns: 15,
    fields: () => ({ x: anyText }),
  },
];

describe("every form action, with random fields, as every role", () => {
  for (const c of FORMS) {
    it(`${c.name}: no 500, no leaked internals, nothing written when refused`, async () => {
      const statuses: Record<string, number> = {};
      let wrote = 0;
      await fc.assert(
        fc.asyncProperty(form(c.fields()), who(), c.params ?? fc.constant({}), fc.string({ maxLength: 20 }), async (values, role, params, junkCookie) => {
          // A login or logout form is posted by a visitor without a session.
          const staff = c.name === "logout" || c.name === "login" ? null : session(role);
          const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
          if (c.name === "logout") headers.cookie = `tb_session=${encodeURIComponent(junkCookie)}`;
          const request = requestAs(staff, c.path, { method: "POST", body: formBody(values), headers });
          const before = await state();
          const o = await outcome(() => c.action({ request, params, context: {} }));
          const label = `${c.name} as ${role} ${JSON.stringify(values).slice(0, 300)}`;
          statuses[o.status] = (statuses[o.status] ?? 0) + 1;
          checkClean(label, o);
          if (o.location && !refused(o)) expect(o.location, label).toMatch(/^\/(?![/\\])/);
          if (refused(o)) {
            const allowed = c.refusalMayWrite?.(o) ?? [];
            expect(changed(before, await state()).filter((table) => !allowed.includes(table)), `${label} → ${o.status} wrote`).toEqual([]);
          } else if (changed(before, await state()).length > 0) wrote += 1;
        }),
        { numRuns: c.numRuns ?? 100, seed: 7_2026 },
      );
      console.log(`${c.name}: answers ${JSON.stringify(statuses)}, ${wrote} accepted with a write`);
      if (c.someAccepted) expect(wrote, JSON.stringify(statuses)).toBeGreaterThan(0);
    });
  }
});

describe("text PostgreSQL cannot store, in every free-text field", () => {
  // Found by the fuzzing above: each of these answered 500 ("invalid byte sequence for encoding UTF8: 0x00").
  // A lone surrogate cannot reach a form action (a form body is UTF-8 encoded on the way, which
  // replaces it), but JSON carries it as an escape: it is tried on the API only.
  const BAD = ["abc\u0000def", "abc\ud800def"];
  const cases = (bad: string): { name: string; run: () => Promise<unknown> }[] => {
    const post = (path: string, values: Record<string, string>) => requestAs(admin, path, { method: "POST", body: formBody(values) });
    return [
      { name: "outliers note", run: () => (outliersAction as Action)({ request: post("/outliers", { intent: "acknowledge", id: String(flagId), note: bad }), params: {}, context: {} }) },
      { name: "override reason", run: () => (overridesAction as Action)({ request: post("/overrides", { action_type: "image_generation", value: "26", reason: bad }), params: {}, context: {} }) },
      { name: "staff name", run: () => (staffAction as Action)({ request: post("/staff", { intent: "create", email: `nul-${randomUUID().slice(0, 6)}@test.local`, name: bad, role: "analyst", password: "abcdefghijklmnop" }), params: {}, context: {} }) },
      { name: "adjustment reason", run: () => (userAction as Action)({ request: post(`/users/${USER}`, { intent: "apply", kind: "grant", amount: "5", reason: bad, idempotency_key: randomUUID() }), params: { userId: USER }, context: {} }) },
      { name: "adjustment idempotency key", run: () => (userAction as Action)({ request: post(`/users/${USER}`, { intent: "apply", kind: "grant", amount: "5", reason: "support ticket", idempotency_key: `${randomUUID()}${bad}` }), params: { userId: USER }, context: {} }) },
      { name: "ledger API reason", run: () => (ledgerApiAction as Action)({ request: apiRequest("/api/v1/ledger", JSON.stringify({ user_id: USER, amount: 5, kind: "grant", reason: bad, idempotency_key: randomUUID() }), "ledger", "application/json"), params: {}, context: {} }) },
      { name: "ledger API idempotency key", run: () => (ledgerApiAction as Action)({ request: apiRequest("/api/v1/ledger", JSON.stringify({ user_id: USER, amount: 5, kind: "grant", reason: "support ticket", idempotency_key: `${randomUUID()}${bad}` }), "ledger", "application/json"), params: {}, context: {} }) },
    ];
  };
  for (const bad of BAD) {
    it(`${JSON.stringify(bad)} is refused naming the field, and nothing is written`, async () => {
      for (const c of cases(bad).filter((c) => bad.includes("\u0000") || c.name.startsWith("ledger API"))) {
        const before = await state();
        const o = await outcome(c.run);
        checkClean(c.name, o);
        expect(o.status, `${c.name}: ${o.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(o.body, c.name).toMatch(/NUL characters or invalid Unicode/);
        expect(changed(before, await state()), c.name).toEqual([]);
      }
    });
  }
});

// --- APIs --------------------------------------------------------------------------------

const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const wideText = fc.string({ unit: fc.oneof({ weight: 10, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: codeUnit }), maxLength: 20 });
const either = <T,>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 80, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }, { weight: 1, arbitrary: nasty });

const usageEvent = fc.record(
  {
    user_id: either(fc.uuid()),
    action_type: either(fc.oneof({ weight: 30, arbitrary: fc.constantFrom(...ACTION_TYPE_NAMES) }, { weight: 1, arbitrary: fc.constant("vibrational_analysis") })),
    model_used: either(fc.constantFrom("gpt-4o", "dall-e-3")),
    tokens_used: either(fc.oneof({ weight: 10, arbitrary: fc.nat({ max: 100_000 }) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 2 ** 31 + 5 }) }, { weight: 1, arbitrary: fc.double() })),
    input_tokens: either(fc.option(fc.nat())),
    success: either(fc.boolean()),
    error_message: either(fc.option(wideText)),
    metadata: fc.oneof(
      { weight: 20, arbitrary: either(fc.dictionary(wideText, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 })) },
      // Nested past the bound (issue 23; 5,000 deep is in input-bounds.test.ts: fast-check's own recursion stops short of it).
      { weight: 1, arbitrary: fc.integer({ min: 30, max: 300 }).map((depth) => JSON.parse(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`) as unknown) },
    ),
    created_at: either(fc.oneof({ weight: 10, arbitrary: fc.date({ min: new Date("2001-01-01"), max: new Date("2025-01-01"), noInvalidDate: true }) }, { weight: 1, arbitrary: fc.date({ min: new Date("1990-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }) }).map((d) => d.toISOString())),
    calculated_cost_cents: either(fc.option(fc.oneof({ weight: 8, arbitrary: fc.double({ min: 0, max: 1e6, noNaN: true }) }, { weight: 1, arbitrary: fc.double({ min: -1, max: 1e12, noNaN: true }) }))),
    audio_seconds: either(fc.option(fc.oneof({ weight: 8, arbitrary: fc.double({ min: 0, max: 1e4, noNaN: true }) }, { weight: 1, arbitrary: fc.double({ min: -1, max: 1e9, noNaN: true }) }))),
    reconciliation_status: either(fc.constantFrom("pending", "pending", "pending", "matched", "bogus")),
    route: either(fc.option(wideText)),
    event_id: either(fc.oneof(fc.uuid(), fc.string({ maxLength: 4 }))),
    id: fc.oneof({ weight: 1, arbitrary: fc.uuid() }, { weight: 30, arbitrary: fc.constant(undefined) }),
  },
  { requiredKeys: ["user_id", "action_type", "model_used", "tokens_used"] },
);

const usageBody = fc.oneof(
  { weight: 8, arbitrary: fc.array(usageEvent, { minLength: 0, maxLength: 3 }).map((events) => JSON.stringify({ events })) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.oneof(wideText, fc.constantFrom("{", '{"events":', '{"events":[{}]}', '{"events":null}', "null", "[]")) },
);

type ApiAuth = "ingest" | "ledger" | "bogus" | "none" | "admin" | "support" | "analyst";
function apiRequest(path: string, body: string, auth: ApiAuth, contentType: string | null): Request {
  const headers = new Headers();
  if (contentType) headers.set("content-type", contentType);
  if (auth === "ingest") headers.set("authorization", `Bearer ${INGEST_KEY}`);
  if (auth === "ledger") headers.set("authorization", `Bearer ${LEDGER_KEY}`);
  if (auth === "bogus") headers.set("authorization", "Bearer not-a-real-key-0000000000");
  const staff = auth === "admin" ? admin : auth === "support" ? support : auth === "analyst" ? analyst : null;
  if (staff) headers.set("cookie", staff.cookie);
  return new Request(`http://localhost${path}`, { method: "POST", body, headers });
}

const contentType = fc.constantFrom<string | null>("application/json", "application/json", "application/json", "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", null);

async function usageRows(): Promise<number> {
  const r = await sql<{ n: number }>`SELECT count(*)::int AS n FROM token_usage`.execute(t.db);
  return r.rows[0]?.n ?? -1;
}

describe("write APIs with random bodies and credentials", () => {
  it("POST /api/v1/usage: no 500, JSON answers without internals, a refused batch stores nothing", async () => {
    const statuses: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(usageBody, fc.constantFrom<ApiAuth>("ingest", "ingest", "ingest", "ingest", "ingest", "ingest", "ledger", "bogus", "none"), contentType, async (body, auth, type) => {
        const before = await state();
        const o = await outcome(() => (usageApiAction as Action)({ request: apiRequest("/api/v1/usage", body, auth, type), params: {}, context: {} }));
        const label = `usage ${auth} ${type} ${body.slice(0, 300)}`;
        statuses[o.status] = (statuses[o.status] ?? 0) + 1;
        checkClean(label, o);
        const after = await state();
        if (refused(o)) {
          expect(changed(before, after), `${label} → ${o.status} wrote`).toEqual([]);
        } else {
          const answer = JSON.parse(o.body) as { accepted: number; duplicates: number };
          expect(after.token_usage.n - before.token_usage.n, label).toBe(answer.accepted);
          expect(changed(before, after).filter((table) => table !== "token_usage"), label).toEqual([]);
        }
      }),
      { numRuns: 250, seed: 7_2027 },
    );
    console.log(`POST /api/v1/usage: answers ${JSON.stringify(statuses)}`);
    expect(await usageRows()).toBeGreaterThan(50);
  });

  const ledgerBody = fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .record(
          {
            user_id: either(fc.constantFrom(USER, randomUUID())),
            amount: either(fc.oneof(fc.integer({ min: -5, max: 20_000 }), fc.constantFrom(1_000_000_000, 1_000_000_001, 2 ** 53, 0.5))),
            kind: either(fc.constantFrom("grant", "deduct")),
            reason: either(fc.oneof({ weight: 4, arbitrary: fc.constantFrom("customer refund for outage", "support ticket 4411") }, { weight: 1, arbitrary: reason })),
            idempotency_key: either(fc.oneof({ weight: 4, arbitrary: fc.uuid() }, { weight: 1, arbitrary: idemKey }, { weight: 1, arbitrary: fc.constantFrom("fuzz-start-0001", "replayed-key-0001") })),
          },
          { requiredKeys: ["user_id", "amount", "kind", "reason", "idempotency_key"] },
        )
        .map((v) => JSON.stringify(v)),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.oneof(wideText, fc.constantFrom("{", "null", "[]", '{"amount":1e400}')) },
  );

  it("POST /api/v1/ledger: no 500, no internals, refused adjustments write nothing, accepted ones keep the balance equal to the ledger", async () => {
    const statuses: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(ledgerBody, fc.constantFrom<ApiAuth>("ledger", "ledger", "ledger", "ingest", "bogus", "none", "admin", "support", "analyst"), contentType, async (body, auth, type) => {
        const before = await state();
        const o = await outcome(() => (ledgerApiAction as Action)({ request: apiRequest("/api/v1/ledger", body, auth, type), params: {}, context: {} }));
        const label = `ledger ${auth} ${type} ${body.slice(0, 300)}`;
        statuses[o.status] = (statuses[o.status] ?? 0) + 1;
        checkClean(label, o);
        const after = await state();
        if (refused(o)) {
          expect(changed(before, after), `${label} → ${o.status} wrote`).toEqual([]);
          return;
        }
        const answer = JSON.parse(o.body) as { user_id: string; balance: number; idempotent_replay: boolean };
        if (answer.idempotent_replay) expect(changed(before, after), `${label} replay wrote`).toEqual([]);
        else expect(after.ledger_entries.n - before.ledger_entries.n, label).toBe(1);
        const sums = await sql<{ ledger: number; balance: number }>`
          SELECT (SELECT COALESCE(sum(amount), 0) FROM tokenboard.ledger_entries WHERE user_id = ${answer.user_id})::bigint AS ledger,
                 (SELECT balance FROM tokenboard.token_balances WHERE user_id = ${answer.user_id})::bigint AS balance`.execute(t.db);
        expect(sums.rows[0], label).toEqual({ ledger: answer.balance, balance: answer.balance });
      }),
      { numRuns: 250, seed: 7_2028 },
    );
    console.log(`POST /api/v1/ledger: answers ${JSON.stringify(statuses)}`);
    expect(statuses["201"] ?? 0).toBeGreaterThan(0);
  });
});

// --- CSV import --------------------------------------------------------------------------

const CSV_COLUMNS = ["user_id", "action_type", "model_used", "tokens_used", "created_at", "event_id", "success", "metadata", "route", "calculated_cost_cents", "input_tokens", "reconciliation_status"];

const csvCell = (column: string): fc.Arbitrary<string> => {
  const valid: Record<string, fc.Arbitrary<string>> = {
    user_id: fc.uuid(),
    action_type: fc.constantFrom(...ACTION_TYPE_NAMES),
    model_used: fc.constantFrom("gpt-4o", "gpt-4o-mini"),
    tokens_used: fc.nat({ max: 100_000 }).map(String),
    created_at: fc.date({ min: new Date("2020-01-01"), max: new Date("2025-01-01"), noInvalidDate: true }).map((d) => d.toISOString()),
    event_id: fc.uuid(),
    success: fc.constantFrom("", "true", "false"),
    metadata: fc.constantFrom("", "{}", '{"a":1}'),
    route: fc.constantFrom("", "/api/viva/chat"),
    calculated_cost_cents: fc.constantFrom("", "1.25", "0"),
    input_tokens: fc.constantFrom("", "10"),
    reconciliation_status: fc.constantFrom("", "pending"),
  };
  return fc.oneof({ weight: 12, arbitrary: valid[column] ?? fc.constant("") }, { weight: 1, arbitrary: nasty }, { weight: 1, arbitrary: wideText }, { weight: 1, arbitrary: fc.constantFrom("1e400", "-3", "{not json", "2025-02-30T00:00:00Z", "TRUE", "yes", '"', "a,b", "line\nbreak") });
};

const quote = (v: string) => (/[",\r\n]/.test(v) || v !== v.trim() ? `"${v.replaceAll('"', '""')}"` : v);

const csvFile = fc
  .tuple(
    fc.subarray(CSV_COLUMNS.slice(4), { minLength: 0 }),
    fc.constantFrom<string[]>([], [], [], [], [], ["id"], ["bogus_column"], ["tokens_used"]),
    fc.nat({ max: 9 }).map((n) => n === 0),
  )
  .chain(([optional, extra, dropRequired]) => {
    const header = [...CSV_COLUMNS.slice(dropRequired ? 1 : 0, 4), ...optional, ...extra];
    const line = fc.oneof(
      { weight: 10, arbitrary: fc.tuple(...header.map((c) => csvCell(c))).map((cells) => cells.map(quote).join(",")) },
      { weight: 1, arbitrary: fc.oneof(wideText, fc.constantFrom('"unterminated,1,2', ",,,", "a,b", "")) },
    );
    return fc.tuple(fc.constant(header.join(",")), fc.array(line, { maxLength: 12 }), fc.constantFrom("\n", "\r\n"), fc.boolean());
  })
  .map(([header, lines, eol, bom]) => `${bom ? "\uFEFF" : ""}${[header, ...lines].join(eol)}${eol}`);

describe("CSV import with random files", () => {
  it("reports or refuses every file without a database error; refused, dry-run and strict-refused files store nothing", async () => {
    const seen = { refused: 0, uncommitted: 0, committed: 0, loaded: 0, rejected: 0 };
    await fc.assert(
      fc.asyncProperty(csvFile, fc.boolean(), fc.boolean(), async (file, strict, dryRun) => {
        const before = await state();
        let report: Awaited<ReturnType<typeof importUsageCsv>> | null = null;
        try {
          report = await importUsageCsv(t.pool, Readable.from([file]), { actor: { id: null, label: "fuzz:import" }, source: "fuzz.csv", strict, dryRun });
        } catch (error) {
          // Only "the file cannot be imported" is an answer: anything else reaches the CLI as a crash.
          expect(error instanceof UsageImportError ? "UsageImportError" : `${String(error)}`, JSON.stringify(file).slice(0, 400)).toBe("UsageImportError");
          for (const message of (error as UsageImportError).messages) expect(message).not.toMatch(LEAK);
          expect(changed(before, await state()), "a refused file wrote").toEqual([]);
          seen.refused += 1;
          return;
        }
        const after = await state();
        for (const rejection of report.rejections) expect(rejection).not.toMatch(/\bat [\w.<>]+ \(|node_modules|syntax error at|violates|relation "/);
        if (strict && report.rejected > 0) expect(report).toMatchObject({ committed: false, loaded: 0, duplicates: 0 });
        else expect(report.loaded + report.duplicates + report.rejected, JSON.stringify(file).slice(0, 400)).toBe(report.lines);
        seen.rejected += report.rejected;
        if (!report.committed) {
          expect(changed(before, after), "an uncommitted import wrote").toEqual([]);
          seen.uncommitted += 1;
        } else {
          seen.committed += 1;
          seen.loaded += report.loaded;
          expect(after.token_usage.n - before.token_usage.n).toBe(report.loaded);
          expect(after.audit_log.n - before.audit_log.n).toBe(1);
          expect(changed(before, after).filter((table) => table !== "token_usage" && table !== "audit_log")).toEqual([]);
        }
      }),
      { numRuns: 150, seed: 7_2029 },
    );
    console.log(`CSV import: ${JSON.stringify(seen)}`);
    expect(seen.refused && seen.uncommitted && seen.committed && seen.loaded && seen.rejected).toBeGreaterThan(0);
  });
});
