/**
 * Every loader and action of every route in app/routes.ts, called as admin, support, analyst
 * and anonymous, against the exact status each must get. Expectations are keyed by route
 * file and by the permission it requires (app/domain/permissions.ts), so a page that lands
 * later only has to keep its permission, and a new route fails here until it is listed.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RouteConfigEntry } from "@remix-run/route-config";
import type { StaffRole } from "../../db/types";
import routes from "../../app/routes";
import { can, type Permission } from "~/domain/permissions";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { login } from "~/lib/auth.server";
import { requestAs, staffSession, TEST_PASSWORD, type TestStaff } from "../support/staff";

type Caller = StaffRole | "anonymous";
const CALLERS: Caller[] = ["admin", "support", "analyst", "anonymous"];

/** What a call must answer: by permission, with the status an allowed caller gets. */
interface Expectation {
  /** "public": no login needed; "key-only": an API that takes no staff session at all. */
  permission: Permission | "public" | "key-only";
  api?: boolean;
  /** Status for a caller who is allowed (requests carry no form fields / an empty JSON body). */
  allowed: number;
  /** Exact statuses for particular callers where the rule above does not say it (public routes). */
  exact?: Partial<Record<Caller, number>>;
}

const page = (permission: Permission, allowed = 200): Expectation => ({ permission, allowed });
const api = (permission: Permission | "key-only", allowed: number): Expectation => ({ permission, api: true, allowed });

const MATRIX: Record<string, { loader?: Expectation; action?: Expectation }> = {
  "routes/login/route.tsx": {
    loader: { permission: "public", allowed: 200, exact: { admin: 302, support: 302, analyst: 302, anonymous: 200 } },
    action: { permission: "public", allowed: 400, exact: {} },
  },
  "routes/logout/route.tsx": { loader: { permission: "public", allowed: 302 }, action: { permission: "public", allowed: 302 } },
  "routes/healthz/route.ts": { loader: { permission: "public", allowed: 200 } },
  // Single sign-on is not configured in this test: both answer 404 to everyone.
  "routes/auth.oidc/route.ts": { loader: { permission: "public", allowed: 404 } },
  "routes/auth.oidc.callback/route.tsx": { loader: { permission: "public", allowed: 404 } },
  // A made-up reset token: the page says the link is unusable (404); an empty form is 422.
  "routes/reset/route.tsx": { loader: { permission: "public", allowed: 404 }, action: { permission: "public", allowed: 422 } },
  "routes/_dashboard/layout.tsx": { loader: page("dashboard:read") },
  "routes/overview/route.tsx": { loader: page("dashboard:read") },
  "routes/action-types/route.tsx": { loader: page("dashboard:read") },
  "routes/action-type/route.tsx": { loader: page("dashboard:read") },
  "routes/routes/route.tsx": { loader: page("dashboard:read") },
  "routes/users/route.tsx": { loader: page("dashboard:read") },
  "routes/user/route.tsx": { loader: page("dashboard:read"), action: page("ledger:adjust", 422) },
  "routes/outliers/route.tsx": { loader: page("dashboard:read"), action: page("outliers:acknowledge", 400) },
  "routes/usage/route.tsx": { loader: page("dashboard:read") },
  "routes/overrides/route.tsx": { loader: page("dashboard:read"), action: page("overrides:edit", 422) },
  "routes/reports/route.tsx": { loader: page("reports:read") },
  "routes/audit/route.tsx": { loader: page("audit:read") },
  "routes/staff/route.tsx": { loader: page("staff:manage"), action: page("staff:manage", 422) },
  "routes/api-keys/route.tsx": { loader: page("keys:manage"), action: page("keys:manage", 422) },
  "routes/account/route.tsx": { loader: page("account:self"), action: page("account:self", 422) },
  "routes/alerts/route.tsx": { loader: page("alerts:manage"), action: page("alerts:manage", 422) },
  // No report has been delivered in this database: an allowed caller gets 404.
  "routes/alerts.report/route.ts": { loader: page("reports:read", 404) },
  "routes/reports.export/route.ts": { loader: page("reports:read") },
  "routes/reports.raw/route.ts": { loader: page("reports:read") },
  "routes/reports.balances/route.ts": { loader: page("reports:read") },
  "routes/billing/route.tsx": { loader: page("billing:read") },
  "routes/billing.reconciliation/route.tsx": { loader: page("billing:read") },
  "routes/billing.reconciliation.csv/route.ts": { loader: page("billing:read") },
  // GET is refused to everyone alike, before any credentials are looked at.
  "routes/api.v1.usage/route.ts": { loader: { permission: "public", api: true, allowed: 405 }, action: api("key-only", 422) },
  "routes/api.v1.ledger/route.ts": { action: api("ledger:adjust", 422) },
  "routes/api.v1.balance/route.ts": { loader: api("ledger:read", 200) },
  "routes/api.otlp.v1.traces/route.ts": { loader: { permission: "public", api: true, allowed: 405 }, action: api("key-only", 200) },
};

/** Logging out ends the session it is called with, so those calls get a session of their own. */
const ENDS_SESSION = new Set(["routes/logout/route.tsx"]);

async function sessionFor(caller: Caller, file: string): Promise<TestStaff | null> {
  const staff = sessions.get(caller) ?? null;
  if (!staff || !ENDS_SESSION.has(file)) return staff;
  const result = await login(new Request("http://localhost/login", { method: "POST" }), staff.email, TEST_PASSWORD, t.db);
  if (!result.ok) throw new Error(result.message);
  return { ...staff, cookie: result.setCookie.split(";")[0] as string };
}

/** Sample values for the URL parameters routes declare. */
const PARAMS: Record<string, string> = { userId: "0b6f3c1e-8a2d-4f5b-9c7e-1d2a3b4c5d6e", name: "image_generation", token: "A".repeat(43), reportId: "5d0c2b1a-3e4f-4a5b-8c6d-7e8f9a0b1c2d" };

interface RouteFile {
  file: string;
  path: string;
}

function flatten(entries: RouteConfigEntry[], parent = ""): RouteFile[] {
  return entries.flatMap((e) => {
    const full = e.path ? `${parent}/${e.path}` : parent;
    return [{ file: e.file, path: full || "/" }, ...flatten(e.children ?? [], full)];
  });
}

function expectedStatus(e: Expectation, caller: Caller): number {
  const exact = e.exact?.[caller];
  if (exact !== undefined) return exact;
  if (e.permission === "public") return e.allowed;
  if (e.permission === "key-only") return 401;
  if (caller === "anonymous") return e.api ? 401 : 302;
  return can(caller, e.permission) ? e.allowed : 403;
}

/** The HTTP status a loader/action outcome turns into (returned or thrown). */
function statusOf(outcome: unknown): number {
  if (outcome instanceof Response) return outcome.status;
  if (outcome && typeof outcome === "object" && "type" in outcome && outcome.type === "DataWithResponseInit") {
    return (outcome as { init?: { status?: number } | null }).init?.status ?? 200;
  }
  if (outcome instanceof Error) return 500;
  return 200;
}

const ROUTE_FILES = flatten(routes);
let t: TestDatabase;
const sessions = new Map<Caller, TestStaff | null>();

beforeAll(async () => {
  t = await createTestDatabase();
  for (const role of ["admin", "support", "analyst"] as const) sessions.set(role, await staffSession(t.db, role));
  sessions.set("anonymous", null);
});
afterAll(async () => t.drop());

it("lists every route module of app/routes.ts in the matrix, and nothing else", () => {
  expect(ROUTE_FILES.map((r) => r.file).sort()).toEqual(Object.keys(MATRIX).sort());
});

describe.each(ROUTE_FILES)("$path ($file)", ({ file, path: urlPath }) => {
  const url = urlPath.replace(/:(\w+)/g, (_, name: string) => PARAMS[name] ?? name);
  const params = Object.fromEntries([...urlPath.matchAll(/:(\w+)/g)].map((m) => [m[1] as string, PARAMS[m[1] as string] as string]));
  for (const kind of ["loader", "action"] as const) {
    it.each(CALLERS)(`${kind} as %s answers the expected status`, async (caller) => {
      const mod = (await import(/* @vite-ignore */ path.resolve("app", file))) as Record<string, unknown>;
      const fn = mod[kind] as ((args: unknown) => Promise<unknown>) | undefined;
      const expectation = MATRIX[file]?.[kind];
      expect(Boolean(fn), `${file} ${kind} exists as the matrix says`).toBe(Boolean(expectation));
      if (!fn || !expectation) return;
      const init: RequestInit =
        kind === "action"
          ? expectation.api
            ? { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }
            : { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" }
          : {};
      const request = requestAs(await sessionFor(caller, file), url, init);
      const outcome = await Promise.resolve()
        .then(() => fn({ request, params, context: {} }))
        .catch((e: unknown) => e);
      expect(statusOf(outcome)).toBe(expectedStatus(expectation, caller));
    });
  }
});
