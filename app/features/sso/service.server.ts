/**
 * Single sign-on with OpenID Connect: the authorization code flow with PKCE, state and nonce,
 * then just-in-time staff provisioning and a normal tokenboard session.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { redirect } from "@remix-run/node";
import { sql, type Kysely } from "kysely";
import * as oidc from "openid-client";
import { z } from "zod";
import type { Database } from "../../../db/types";
import { readCookie, shortLivedCookie, startStaffSession } from "../../lib/auth.server";
import { getDb } from "../../lib/db.server";
import { getEnv } from "../../lib/env.server";
import { clientIp } from "../../lib/http.server";
import { hashPassword } from "../../lib/password.server";
import { recordAudit } from "../../models/audit.server";
import { findStaffByEmail } from "../../models/staff.server";
import { identityFromClaims, sameOriginPath, type RoleRules } from "./rules";
import { logger } from "../../lib/logger.server";

export const SSO_COOKIE = "tb_oidc";
const SSO_COOKIE_PATH = "/auth/oidc";
/** Time allowed between leaving for the provider and coming back. */
const SSO_FLOW_SECONDS = 600;

export interface SsoSettings extends RoleRules {
  issuer: URL;
  clientId: string;
  clientSecret: string;
  redirectUrl?: string;
  scopes: string;
}

export function ssoSettings(): SsoSettings | null {
  const env = getEnv();
  if (!env.TOKENBOARD_OIDC_ISSUER || !env.TOKENBOARD_OIDC_CLIENT_ID || !env.TOKENBOARD_OIDC_CLIENT_SECRET) return null;
  return {
    issuer: new URL(env.TOKENBOARD_OIDC_ISSUER),
    clientId: env.TOKENBOARD_OIDC_CLIENT_ID,
    clientSecret: env.TOKENBOARD_OIDC_CLIENT_SECRET,
    redirectUrl: env.TOKENBOARD_OIDC_REDIRECT_URL,
    scopes: env.TOKENBOARD_OIDC_SCOPES,
    roleClaim: env.TOKENBOARD_OIDC_ROLE_CLAIM,
    roleMap: env.TOKENBOARD_OIDC_ROLE_MAP,
    domainRoles: env.TOKENBOARD_OIDC_DOMAIN_ROLES,
  };
}

/** Passwords work unless SSO is configured and TOKENBOARD_LOCAL_LOGIN=off (the env refuses off without SSO). */
export function localLoginAllowed(): boolean {
  return getEnv().TOKENBOARD_LOCAL_LOGIN === "on" || ssoSettings() === null;
}

function requireSettings(): SsoSettings {
  const settings = ssoSettings();
  if (!settings) throw new Response(JSON.stringify({ message: "Single sign-on is not configured here." }), { status: 404, headers: { "content-type": "application/json" } });
  return settings;
}

/** openid-client refuses plain http; allowed only for a provider on this machine (tests, local trials). */
export function isLoopbackIssuer(issuer: URL): boolean {
  return ["localhost", "[::1]"].includes(issuer.hostname) || /^127(\.\d{1,3}){3}$/.test(issuer.hostname);
}

const configurations = new Map<string, Promise<oidc.Configuration>>();

/** The provider's discovered metadata, once per process; a failed discovery is tried again next time. */
function providerConfiguration(settings: SsoSettings): Promise<oidc.Configuration> {
  const key = `${settings.issuer.href} ${settings.clientId}`;
  let found = configurations.get(key);
  if (!found) {
    const insecure = settings.issuer.protocol === "http:" && isLoopbackIssuer(settings.issuer);
    found = oidc.discovery(settings.issuer, settings.clientId, { client_secret: settings.clientSecret }, oidc.ClientSecretBasic(settings.clientSecret), insecure ? { execute: [oidc.allowInsecureRequests] } : undefined);
    found.catch(() => configurations.delete(key));
    configurations.set(key, found);
  }
  return found;
}

function redirectUri(request: Request, settings: SsoSettings): string {
  return settings.redirectUrl ?? new URL("/auth/oidc/callback", request.url).href;
}

const flowSchema = z.object({
  state: z.string().min(1),
  nonce: z.string().min(1),
  verifier: z.string().min(43),
  redirectTo: z.string(),
  expires: z.number(),
});
type Flow = z.infer<typeof flowSchema>;

/** The flow's cookie is MACed with a key derived from the client secret: only this server can mint one. */
function flowMac(settings: SsoSettings, payload: string): Buffer {
  const key = createHmac("sha256", settings.clientSecret).update("tokenboard sso flow cookie").digest();
  return createHmac("sha256", key).update(payload).digest();
}

function sealFlow(settings: SsoSettings, flow: Flow): string {
  const payload = Buffer.from(JSON.stringify(flow)).toString("base64url");
  return `${payload}.${flowMac(settings, payload).toString("base64url")}`;
}

function openFlow(settings: SsoSettings, sealed: string | null): Flow | null {
  const [payload, mac] = sealed?.split(".") ?? [];
  if (!payload || !mac) return null;
  const expected = flowMac(settings, payload);
  const given = Buffer.from(mac, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  try {
    const flow = flowSchema.parse(JSON.parse(Buffer.from(payload, "base64url").toString("utf8")));
    return flow.expires > Date.now() ? flow : null;
  } catch {
    return null;
  }
}

function providerUnreachable(error: unknown): Response {
  logger.error({ err: error }, "sso provider discovery failed");
  return new Response(JSON.stringify({ message: "The sign-in provider could not be reached. Try again in a minute, or log in with a password if that is allowed here." }), {
    status: 502,
    headers: { "content-type": "application/json" },
  });
}

const startQuery = z.object({ redirectTo: z.string().max(2048).optional() });

/** GET /auth/oidc: off to the provider, with this attempt's secrets in a short-lived cookie. */
export async function startSsoLogin(request: Request): Promise<Response> {
  const settings = requireSettings();
  const url = new URL(request.url);
  const query = startQuery.safeParse(Object.fromEntries(url.searchParams));
  const config = await providerConfiguration(settings).catch((error: unknown) => {
    throw providerUnreachable(error);
  });
  const verifier = oidc.randomPKCECodeVerifier();
  const flow: Flow = {
    state: oidc.randomState(),
    nonce: oidc.randomNonce(),
    verifier,
    redirectTo: sameOriginPath(query.data?.redirectTo, url.origin),
    expires: Date.now() + SSO_FLOW_SECONDS * 1000,
  };
  const authorizationUrl = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri(request, settings),
    scope: settings.scopes,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state: flow.state,
    nonce: flow.nonce,
  });
  const cookie = shortLivedCookie(request, SSO_COOKIE, sealFlow(settings, flow), { path: SSO_COOKIE_PATH, maxAgeSeconds: SSO_FLOW_SECONDS });
  return redirect(authorizationUrl.href, { headers: { "Set-Cookie": cookie, "Cache-Control": "no-store" } });
}

export type SsoOutcome = { ok: true; redirectTo: string; cookies: string[] } | { ok: false; status: number; message: string; cookies: string[] };

/**
 * GET /auth/oidc/callback: checks the provider's answer against this browser's attempt, maps the
 * role, provisions or updates the staff member (audited) and starts a session.
 */
export async function finishSsoLogin(request: Request, db: Kysely<Database> = getDb()): Promise<SsoOutcome> {
  const settings = requireSettings();
  // Each attempt's secrets are used once, whatever the outcome.
  const cookies = [shortLivedCookie(request, SSO_COOKIE, "", { path: SSO_COOKIE_PATH, maxAgeSeconds: 0 })];
  const refuse = (status: number, message: string): SsoOutcome => ({ ok: false, status, message, cookies });
  const flow = openFlow(settings, readCookie(request, SSO_COOKIE));
  if (!flow) return refuse(400, "This sign-in was not started here, or took longer than 10 minutes. Start again from the login page.");
  const url = new URL(request.url);
  const providerError = url.searchParams.get("error");
  if (providerError) {
    const description = url.searchParams.get("error_description") ?? providerError;
    return refuse(401, `The sign-in provider did not sign you in: ${description.slice(0, 200)}`);
  }
  const config = await providerConfiguration(settings).catch((error: unknown) => {
    throw providerUnreachable(error);
  });
  // The URL the provider sent the browser to, as registered (a proxy may change the request's own).
  const currentUrl = new URL(redirectUri(request, settings));
  currentUrl.search = url.search;
  let claims: Record<string, unknown>;
  try {
    const tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims();
    if (!idClaims) return refuse(401, "The sign-in provider sent no ID token.");
    claims = { ...idClaims };
    // Many providers put email and groups in the userinfo answer rather than the ID token.
    if (config.serverMetadata().userinfo_endpoint) {
      const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      // The ID token's own, signed values win over userinfo's.
      claims = { ...userinfo, ...idClaims };
    }
  } catch (error) {
    logger.warn({ err: error }, "sso sign-in answer refused");
    return refuse(401, "The sign-in could not be completed: the provider's answer did not match this sign-in. Start again from the login page.");
  }
  const actor = { id: null, label: `sso:${settings.issuer.host}`, ip: clientIp(request) };
  const identity = identityFromClaims(claims, settings);
  if (!identity.ok) {
    // Kept for whoever asks an admin why they cannot get in.
    const email = typeof claims.email === "string" ? claims.email.slice(0, 254) : null;
    await recordAudit(db, actor, { action: "auth.sso_refused", targetType: "staff", after: { email, sub: claims.sub, reason: identity.message } });
    return refuse(403, identity.message);
  }

  const outcome = await db.transaction().execute(async (trx) => {
    let staff = await findStaffByEmail(trx, identity.email);
    if (staff?.disabled_at) {
      await recordAudit(trx, actor, { action: "auth.sso_refused", targetType: "staff", targetId: staff.id, after: { email: staff.email, reason: "disabled" } });
      return { disabled: true as const };
    }
    if (!staff) {
      // No password anyone knows: this account signs in through the provider (or after an admin's reset).
      const passwordHash = await hashPassword(randomBytes(32).toString("base64url"));
      // A second first sign-in of the same person at the same moment links to the row the first made.
      const created = await trx
        .insertInto("staff_users")
        .values({ email: identity.email, name: identity.name, password_hash: passwordHash, role: identity.role })
        .onConflict((oc) => oc.expression(sql`lower(email)`).doNothing())
        .returningAll()
        .executeTakeFirst();
      staff = created ?? (await findStaffByEmail(trx, identity.email));
      if (!staff) throw new Error("staff row neither created nor found");
      if (created) await recordAudit(trx, actor, { action: "staff.sso_provision", targetType: "staff", targetId: staff.id, after: { email: staff.email, role: staff.role, from: identity.source } });
    }
    if (staff.role !== identity.role) {
      // The provider is the source of roles: a change there applies at the next sign-in.
      await trx.updateTable("staff_users").set({ role: identity.role, updated_at: new Date() }).where("id", "=", staff.id).execute();
      await recordAudit(trx, actor, { action: "staff.sso_role_change", targetType: "staff", targetId: staff.id, before: { role: staff.role }, after: { role: identity.role, from: identity.source } });
    }
    return { disabled: false as const, cookie: await startStaffSession(request, staff, trx) };
  });
  if (outcome.disabled) return refuse(403, `The tokenboard account of ${identity.email} is disabled. Ask an admin to enable it.`);
  return { ok: true, redirectTo: sameOriginPath(flow.redirectTo, url.origin), cookies: [...cookies, outcome.cookie] };
}
