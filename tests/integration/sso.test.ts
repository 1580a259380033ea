/**
 * Single sign-on against a real OpenID provider (oidc-provider) on 127.0.0.1: a scripted browser
 * follows every redirect by hand and carries cookies per host; tokenboard's side runs its route
 * loaders and actions on the test's own database.
 */
import type { LoaderFunctionArgs } from "@remix-run/node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { sql } from "kysely";
import { loader as startLoader } from "~/routes/auth.oidc/route";
import { loader as callbackLoader } from "~/routes/auth.oidc.callback/route";
import { action as loginAction, loader as loginLoader } from "~/routes/login/route";
import { getStaff } from "~/lib/auth.server";
import { forgetEnv, getEnv } from "~/lib/env.server";
import { createStaff } from "~/models/staff.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { OIDC_CLIENT, startOidcProvider, type TestProvider } from "../support/oidc-provider";

const ORIGIN = "http://tokenboard.test";

const ACCOUNTS = {
  alice: { email: "alice@corp.test", email_verified: true, name: "Alice", tokenboard_role: "Support-Team" },
  bob: { email: "bob@corp.test", email_verified: true, groups: ["tb-analysts", "tb-admins", "unrelated"] },
  carol: { email: "carol@partner.test", email_verified: true },
  dave: { email: "dave@elsewhere.test", email_verified: true, tokenboard_role: "visitor" },
  erin: { email: "erin@partner.test", email_verified: false },
  frank: { email: "frank@corp.test", email_verified: true, tokenboard_role: "tb-admins" },
  henry: { email: "henry@corp.test", email_verified: true, tokenboard_role: "support-team" },
};

interface Step {
  url: string;
  status: number;
  location: string | null;
  body: string;
}

type Loader = (args: LoaderFunctionArgs) => Promise<unknown>;
const TOKENBOARD_ROUTES: Record<string, Loader> = { "/auth/oidc": startLoader, "/auth/oidc/callback": callbackLoader, "/login": loginLoader };

/** A loader's outcome (returned or thrown) as the Response the server would send. */
function asResponse(outcome: unknown): Response {
  if (outcome instanceof Response) return outcome;
  if (outcome && typeof outcome === "object" && "type" in outcome && outcome.type === "DataWithResponseInit") {
    const { data, init } = outcome as unknown as { data: unknown; init?: ResponseInit | null };
    return new Response(JSON.stringify(data), { status: init?.status ?? 200, headers: init?.headers });
  }
  if (outcome instanceof Error) throw outcome;
  return Response.json(outcome);
}

/** Cookies by host, the parts of a browser this flow depends on. */
class Browser {
  private readonly jar = new Map<string, Map<string, string>>();

  cookieHeader(url: string): string {
    const cookies = this.jar.get(new URL(url).host) ?? new Map<string, string>();
    return [...cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  cookie(url: string, name: string): string | undefined {
    return this.jar.get(new URL(url).host)?.get(name);
  }

  private store(url: string, setCookies: string[]): void {
    const host = new URL(url).host;
    const cookies = this.jar.get(host) ?? new Map<string, string>();
    for (const line of setCookies) {
      const [pair = "", ...attributes] = line.split(";");
      const at = pair.indexOf("=");
      const name = pair.slice(0, at).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || pair.slice(at + 1) === "") cookies.delete(name);
      else cookies.set(name, pair.slice(at + 1));
    }
    this.jar.set(host, cookies);
  }

  /** One request, no redirect followed. */
  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Step> {
    const headers = new Headers({ cookie: this.cookieHeader(url), "user-agent": "sso-test" });
    const body = init.form ? new URLSearchParams(init.form).toString() : undefined;
    if (body) headers.set("content-type", "application/x-www-form-urlencoded");
    let response: Response;
    if (new URL(url).origin === ORIGIN) {
      const route = TOKENBOARD_ROUTES[new URL(url).pathname];
      // Any other page of tokenboard is where the sign-in lands: the test looks at the session.
      if (!route) return { url, status: 200, location: null, body: "" };
      const request = new Request(url, { method: init.method ?? "GET", headers, body });
      response = asResponse(await route({ request, params: {}, context: {} }).catch((e: unknown) => e));
    } else {
      response = await fetch(url, { method: init.method ?? "GET", headers, body, redirect: "manual" });
    }
    this.store(url, response.headers.getSetCookie());
    const location = response.headers.get("location");
    return { url, status: response.status, location: location ? new URL(location, url).href : null, body: await response.text() };
  }

  /** Follows redirects until a page answers (or `stopBefore` says to hand the URL back unvisited). */
  async navigate(url: string, init: { method?: string; form?: Record<string, string>; stopBefore?: (url: string) => boolean } = {}): Promise<Step> {
    let step = await this.request(url, init);
    for (let hops = 0; step.location && step.status >= 300 && step.status < 400; hops++) {
      if (hops > 20) throw new Error("too many redirects");
      if (init.stopBefore?.(step.location)) return { url: step.location, status: 0, location: null, body: "" };
      step = await this.request(step.location);
    }
    return step;
  }
}

/** The provider's development login and consent pages, answered as a person would. */
async function completeProviderPages(browser: Browser, first: Step, login: string, stopBefore?: (url: string) => boolean): Promise<Step> {
  let step = first;
  for (let pages = 0; step.status === 200 && step.body.includes("<form"); pages++) {
    if (pages > 4) throw new Error(`stuck on the provider's pages: ${step.body.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(step.body)?.[1]?.replaceAll("&amp;", "&");
    if (!action) throw new Error("the provider's page has no form");
    const form: Record<string, string> = {};
    for (const input of step.body.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) form[input[1] as string] = input[2] as string;
    if (form.prompt === "login") Object.assign(form, { login, password: "any password" });
    step = await browser.navigate(new URL(action, step.url).href, { method: "POST", form, stopBefore });
  }
  return step;
}

async function signIn(browser: Browser, login: string, redirectTo = "/users"): Promise<Step> {
  const first = await browser.navigate(`${ORIGIN}/auth/oidc?redirectTo=${encodeURIComponent(redirectTo)}`);
  return completeProviderPages(browser, first, login);
}

async function sessionOf(browser: Browser) {
  return getStaff(new Request(`${ORIGIN}/`, { headers: { cookie: browser.cookieHeader(ORIGIN) } }), t.db);
}

const staffRow = (email: string) => t.db.selectFrom("staff_users").selectAll().where(sql<string>`lower(email)`, "=", email).executeTakeFirst();

let t: TestDatabase;
let provider: TestProvider;
const SAVED_ENV = { ...process.env };

function configure(env: Record<string, string | undefined>): void {
  for (const key of Object.keys(process.env)) if (key.startsWith("TOKENBOARD_OIDC_") || key === "TOKENBOARD_LOCAL_LOGIN") delete process.env[key];
  Object.assign(process.env, {
    TOKENBOARD_OIDC_ISSUER: provider.issuer,
    TOKENBOARD_OIDC_CLIENT_ID: OIDC_CLIENT.id,
    TOKENBOARD_OIDC_CLIENT_SECRET: OIDC_CLIENT.secret,
    ...env,
  });
  forgetEnv();
  getEnv();
}

beforeAll(async () => {
  t = await createTestDatabase();
  provider = await startOidcProvider({ redirectUris: [`${ORIGIN}/auth/oidc/callback`], accounts: ACCOUNTS });
});
afterAll(async () => {
  process.env = SAVED_ENV;
  forgetEnv();
  await provider?.close();
  await t?.drop();
});

describe("with roles from a claim", () => {
  beforeEach(() => configure({ TOKENBOARD_OIDC_ROLE_CLAIM: "tokenboard_role", TOKENBOARD_OIDC_ROLE_MAP: "support-team=support,tb-admins=admin" }));

  it("signs in a new staff member with the mapped role, audited, and lands on redirectTo with a working session", async () => {
    const browser = new Browser();
    const end = await signIn(browser, "alice", "/users?q=x");
    expect(end.url).toBe(`${ORIGIN}/users?q=x`);
    const staff = await sessionOf(browser);
    expect(staff).toMatchObject({ email: "alice@corp.test", name: "Alice", role: "support" });
    const audit = await t.db.selectFrom("audit_log").select(["action", "actor_label"]).where("target_id", "=", staff?.id ?? "").orderBy("id").execute();
    expect(audit.map((a) => a.action)).toEqual(["staff.sso_provision", "auth.login_sso"]);
    // The attempt's cookie is spent.
    expect(browser.cookie(ORIGIN, "tb_oidc")).toBeUndefined();
  });

  it("updates an existing staff member's role to the provider's, audited, and keeps one row", async () => {
    await createStaff(t.db, { id: null, label: "test" }, { email: "Frank@corp.test", password: "a long test password", role: "analyst" });
    const browser = new Browser();
    await signIn(browser, "frank");
    expect(await sessionOf(browser)).toMatchObject({ email: "Frank@corp.test", role: "admin" });
    const change = await t.db.selectFrom("audit_log").select(["before", "after"]).where("action", "=", "staff.sso_role_change").executeTakeFirstOrThrow();
    expect([change.before, change.after]).toEqual([{ role: "analyst" }, { role: "admin", from: "claim" }]);
  });

  it("refuses an account whose claim maps to no role, with a page that says so, and creates no one", async () => {
    const browser = new Browser();
    const end = await signIn(browser, "dave");
    expect(end.status).toBe(403);
    expect(JSON.parse(end.body).message).toContain("no tokenboard role is granted");
    expect(await staffRow("dave@elsewhere.test")).toBeUndefined();
    expect(await sessionOf(browser)).toBeNull();
    const refusal = await t.db.selectFrom("audit_log").select(["after"]).where("action", "=", "auth.sso_refused").executeTakeFirstOrThrow();
    expect(refusal.after).toMatchObject({ email: "dave@elsewhere.test", sub: "dave" });
  });

  it("links two simultaneous first sign-ins of one person to one new row, both signed in", async () => {
    const isCallback = (url: string) => url.startsWith(`${ORIGIN}/auth/oidc/callback`);
    const browsers = [new Browser(), new Browser()];
    const callbacks = await Promise.all(browsers.map(async (b) => completeProviderPages(b, await b.navigate(`${ORIGIN}/auth/oidc`), "henry", isCallback)));
    const ends = await Promise.all(browsers.map((b, i) => b.navigate(callbacks[i]?.url ?? "")));
    expect(ends.map((e) => e.url)).toEqual([`${ORIGIN}/`, `${ORIGIN}/`]);
    for (const b of browsers) expect(await sessionOf(b)).toMatchObject({ email: "henry@corp.test", role: "support" });
    const provisions = await t.db.selectFrom("audit_log").select("id").where("action", "=", "staff.sso_provision").where("target_id", "=", (await staffRow("henry@corp.test"))?.id ?? "").execute();
    expect(provisions).toHaveLength(1);
  });

  it("refuses a disabled staff member", async () => {
    await t.db.updateTable("staff_users").set({ disabled_at: new Date() }).where(sql<string>`lower(email)`, "=", "alice@corp.test").execute();
    const browser = new Browser();
    const end = await signIn(browser, "alice");
    expect(end.status).toBe(403);
    expect(JSON.parse(end.body).message).toContain("is disabled");
    expect(await sessionOf(browser)).toBeNull();
    await t.db.updateTable("staff_users").set({ disabled_at: null }).where(sql<string>`lower(email)`, "=", "alice@corp.test").execute();
  });

  it("refuses a callback carrying another browser's sign-in (state mismatch), and starts no session", async () => {
    const victim = new Browser();
    const attacker = new Browser();
    // The attacker signs in at the provider and keeps the callback URL instead of visiting it.
    const started = await attacker.navigate(`${ORIGIN}/auth/oidc`);
    const isCallback = (url: string) => url.startsWith(`${ORIGIN}/auth/oidc/callback`);
    const stolen = await completeProviderPages(attacker, started, "alice", isCallback);
    expect(isCallback(stolen.url)).toBe(true);
    // The victim has an attempt of their own going: its state is not the attacker's.
    await victim.navigate(`${ORIGIN}/auth/oidc`);
    const end = await victim.navigate(stolen.url);
    expect(end.status).toBe(401);
    expect(JSON.parse(end.body).message).toContain("did not match this sign-in");
    expect(await sessionOf(victim)).toBeNull();
    // Without any attempt of its own, the browser is told to start again.
    const fresh = await new Browser().navigate(stolen.url);
    expect(fresh.status).toBe(400);
  });

  it("refuses a tampered state even with this browser's own attempt cookie", async () => {
    const browser = new Browser();
    const started = await browser.navigate(`${ORIGIN}/auth/oidc`);
    const callback = await completeProviderPages(browser, started, "alice", (url) => url.startsWith(`${ORIGIN}/auth/oidc/callback`));
    const tampered = new URL(callback.url);
    tampered.searchParams.set("state", "forged-state-value");
    const end = await browser.navigate(tampered.href);
    expect(end.status).toBe(401);
    expect(await sessionOf(browser)).toBeNull();
  });

  it("keeps redirectTo on this site", async () => {
    for (const redirectTo of ["//evil.example/x", "/\t/evil.example", "https://evil.example/", "/\\evil.example"]) {
      const browser = new Browser();
      const end = await signIn(browser, "alice", redirectTo);
      expect(end.url, redirectTo).toBe(`${ORIGIN}/`);
    }
  });
});

describe("with roles from a groups claim and from email domains", () => {
  beforeEach(() =>
    configure({
      TOKENBOARD_OIDC_ROLE_CLAIM: "groups",
      TOKENBOARD_OIDC_ROLE_MAP: '{"tb-analysts": "analyst", "tb-admins": "admin"}',
      TOKENBOARD_OIDC_DOMAIN_ROLES: "partner.test=analyst",
    }),
  );

  it("gives the strongest role of several matching groups", async () => {
    const browser = new Browser();
    await signIn(browser, "bob");
    expect(await sessionOf(browser)).toMatchObject({ email: "bob@corp.test", role: "admin" });
  });

  it("maps the role from the email's domain when no claim grants one", async () => {
    const browser = new Browser();
    await signIn(browser, "carol");
    expect(await sessionOf(browser)).toMatchObject({ email: "carol@partner.test", role: "analyst" });
    const provision = await t.db.selectFrom("audit_log").select("after").where("action", "=", "staff.sso_provision").where("target_id", "=", (await staffRow("carol@partner.test"))?.id ?? "").executeTakeFirstOrThrow();
    expect(provision.after).toMatchObject({ role: "analyst", from: "domain" });
  });

  it("refuses an email the provider marks unverified, even in a mapped domain", async () => {
    const browser = new Browser();
    const end = await signIn(browser, "erin");
    expect(end.status).toBe(403);
    expect(JSON.parse(end.body).message).toContain("not verified");
    expect(await staffRow("erin@partner.test")).toBeUndefined();
  });
});

describe("password login", () => {
  const password = "a long test password";
  const tryPassword = async () => {
    const body = new URLSearchParams({ email: "grace@corp.test", password, redirectTo: "/" });
    const request = new Request(`${ORIGIN}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    return loginAction({ request, params: {}, context: {} }).catch((e: unknown) => e);
  };
  const loginPage = async () => loginLoader({ request: new Request(`${ORIGIN}/login`), params: {}, context: {} });

  beforeAll(async () => {
    await createStaff(t.db, { id: null, label: "test" }, { email: "grace@corp.test", password, role: "analyst" });
  });

  it("is refused, and hidden, when TOKENBOARD_LOCAL_LOGIN=off", async () => {
    configure({ TOKENBOARD_OIDC_ROLE_CLAIM: "tokenboard_role", TOKENBOARD_LOCAL_LOGIN: "off" });
    const outcome = asResponse(await tryPassword());
    expect(outcome.status).toBe(403);
    expect((await outcome.json()).message).toContain("sign in with SSO");
    expect(outcome.headers.get("set-cookie")).toBeNull();
    expect(await loginPage()).toEqual({ sso: true, localLogin: false });
  });

  it("works beside SSO when TOKENBOARD_LOCAL_LOGIN is on (the default)", async () => {
    configure({ TOKENBOARD_OIDC_ROLE_CLAIM: "tokenboard_role" });
    const outcome = asResponse(await tryPassword());
    expect(outcome.status).toBe(302);
    expect(outcome.headers.get("set-cookie")).toContain("tb_session=");
    expect(await loginPage()).toEqual({ sso: true, localLogin: true });
  });
});
