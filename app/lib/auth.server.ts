/**
 * Staff sessions and API keys. Every loader and action starts with requireStaff (or
 * requireApiAccess for /api/v1): nothing is only hidden in the UI.
 */
import { randomBytes } from "node:crypto";
import { redirect } from "@remix-run/node";
import type { Kysely } from "kysely";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { ApiKeyScope, Database, StaffRole } from "../../db/types";
import { describeWait } from "../domain/login-throttle";
import { can, type Permission } from "../domain/permissions";
import { findActiveApiKey, noteApiKeyUse, sha256 } from "../models/api-keys.server";
import { recordAudit, type Actor } from "../models/audit.server";
import { clearLoginFailures, loginWaitSeconds, recordLoginFailure } from "../models/login-throttle.server";
import { findStaffByEmail } from "../models/staff.server";
import { databaseUnavailableResponse, getDb, isDatabaseUnavailable } from "./db.server";
import { countFailedKey, consumeKeyRequest, refuseAddressOverFailedKeys } from "./api-rate-limit.server";
import { getEnv } from "./env.server";
import { clientIp, isJsonContentType, jsonError } from "./http.server";
import { hashPassword, verifyPassword } from "./password.server";

export { FREE_FAILED_LOGINS } from "../domain/login-throttle";

export { registerApiKey, sha256 } from "../models/api-keys.server";
export { configureApiRateLimits } from "./api-rate-limit.server";

export const SESSION_COOKIE = "tb_session";
const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export interface Staff {
  id: string;
  email: string;
  name: string;
  role: StaffRole;
  timezone: string;
}

export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get("cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

function secureCookie(request: Request): boolean {
  const setting = process.env.TOKENBOARD_COOKIE_SECURE ?? "auto";
  if (setting === "on") return true;
  if (setting === "off") return false;
  return new URL(request.url).protocol === "https:";
}

function sessionCookie(request: Request, value: string, maxAgeSeconds: number): string {
  const parts = [`${SESSION_COOKIE}=${value}`, "Path=/", "HttpOnly", "SameSite=Lax", `Max-Age=${maxAgeSeconds}`];
  if (secureCookie(request)) parts.push("Secure");
  return parts.join("; ");
}

/** The id (hash) of the session the request carries, valid or not. */
export function currentSessionId(request: Request): string | null {
  const token = readCookie(request, SESSION_COOKIE);
  return token ? sha256(token) : null;
}

export function actorOf(staff: Staff, request?: Request): Actor {
  return { id: staff.id, label: staff.email, ip: request ? clientIp(request) : null };
}

export async function getStaff(request: Request, db: Kysely<Database> = getDb()): Promise<Staff | null> {
  const token = readCookie(request, SESSION_COOKIE);
  if (!token) return null;
  try {
    return await findSessionStaff(db, token);
  } catch (error) {
    // Every loader and action starts here, so an unreachable database becomes a clear 503.
    if (isDatabaseUnavailable(error)) throw databaseUnavailableResponse();
    throw error;
  }
}

async function findSessionStaff(db: Kysely<Database>, token: string): Promise<Staff | null> {
  const row = await db
    .selectFrom("staff_sessions as s")
    .innerJoin("staff_users as u", "u.id", "s.staff_id")
    .select(["u.id", "u.email", "u.name", "u.role", "u.timezone"])
    .where("s.id", "=", sha256(token))
    .where("s.expires_at", ">", new Date())
    .where("u.disabled_at", "is", null)
    .executeTakeFirst();
  return row ?? null;
}

/** For pages: an anonymous visitor is sent to log in; a staff member without the permission gets 403. */
export async function requireStaff(request: Request, permission: Permission = "dashboard:read"): Promise<Staff> {
  const staff = await getStaff(request);
  if (!staff) {
    const url = new URL(request.url);
    throw redirect(`/login?redirectTo=${encodeURIComponent(url.pathname + url.search)}`);
  }
  if (!can(staff.role, permission)) {
    throw new Response(JSON.stringify({ message: `Your role (${staff.role}) cannot do this. Ask an admin.` }), {
      status: 403,
      headers: { "content-type": "application/json" },
    });
  }
  return staff;
}

export type LoginResult =
  | { ok: true; staff: Staff; setCookie: string }
  | { ok: false; reason: "invalid"; message: string }
  | { ok: false; reason: "throttled" | "rate_limited"; message: string; retryAfterSeconds: number };

let addressLimiter: RateLimiterMemory | undefined;

/**
 * Failed logins per client address across all emails (TOKENBOARD_LOGIN_ADDRESS_LIMIT a minute):
 * each attempt takes a point before the password hash runs, a success gives it back. Answers
 * the seconds to wait, or 0. In memory: a per-process bound on guessing and hashing work.
 */
async function takeAddressAttempt(address: string): Promise<number> {
  addressLimiter ??= new RateLimiterMemory({ points: getEnv().TOKENBOARD_LOGIN_ADDRESS_LIMIT, duration: 60, keyPrefix: "login-address" });
  try {
    await addressLimiter.consume(address);
    return 0;
  } catch (rejection) {
    if (rejection instanceof RateLimiterRes) return Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
    throw rejection;
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Unknown and disabled emails are checked against this hash, so every answer costs one argon2
 * verification and its time does not tell staff emails from others.
 */
function passwordHashOf(user: { password_hash: string; disabled_at: Date | null } | undefined): Promise<string> {
  if (user && user.disabled_at === null) return Promise.resolve(user.password_hash);
  dummyHash ??= hashPassword(randomBytes(24).toString("base64url"));
  return dummyHash;
}

/**
 * Checks a password. Wrong passwords are throttled per (email, client address), whether or not
 * the email is staff (so the answer does not reveal which emails exist): after
 * FREE_FAILED_LOGINS failures the pair waits 1 s, 2 s, 4 s … (app/domain/login-throttle.ts),
 * and only that pair: the real user elsewhere can still log in. A successful login always
 * starts a new session.
 */
export async function login(request: Request, email: string, password: string, db: Kysely<Database> = getDb()): Promise<LoginResult> {
  const ip = clientIp(request);
  const address = ip || "unknown";
  const addressWait = await takeAddressAttempt(address);
  if (addressWait > 0) {
    return { ok: false, reason: "rate_limited", retryAfterSeconds: addressWait, message: `Too many failed logins from your address. Try again in ${describeWait(addressWait)}.` };
  }
  const pairWait = await loginWaitSeconds(db, email, address);
  if (pairWait > 0) {
    return {
      ok: false,
      reason: "throttled",
      retryAfterSeconds: pairWait,
      message: `Too many failed attempts for this email. Wait ${describeWait(pairWait)} and try again, or ask an admin to unlock the account.`,
    };
  }
  const user = await findStaffByEmail(db, email);
  const passwordMatches = await verifyPassword(await passwordHashOf(user), password);
  const valid = user !== undefined && user.disabled_at === null && passwordMatches;
  await db.insertInto("login_attempts").values({ email, ip, succeeded: valid }).execute();
  if (!valid || !user) {
    const delay = await recordLoginFailure(db, email, address);
    if (user) await recordAudit(db, { id: user.id, label: user.email, ip }, { action: "auth.login_failed", targetType: "staff", targetId: user.id });
    const wait = delay > 0 ? ` Too many failed attempts: wait ${describeWait(delay)} before the next one.` : "";
    return { ok: false, reason: "invalid", message: `Email or password is incorrect.${wait}` };
  }
  await addressLimiter?.reward(address);
  await clearLoginFailures(db, email, address);
  const token = randomBytes(32).toString("base64url");
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto("staff_sessions")
      .values({
        id: sha256(token),
        staff_id: user.id,
        expires_at: new Date(Date.now() + SESSION_TTL_MS),
        ip,
        user_agent: request.headers.get("user-agent")?.slice(0, 300) ?? null,
      })
      .execute();
    // A session id that was set before login (fixation) is dropped.
    const previous = readCookie(request, SESSION_COOKIE);
    if (previous) await trx.deleteFrom("staff_sessions").where("id", "=", sha256(previous)).execute();
    await recordAudit(trx, { id: user.id, label: user.email, ip }, { action: "auth.login", targetType: "staff", targetId: user.id });
  });
  return {
    ok: true,
    staff: { id: user.id, email: user.email, name: user.name, role: user.role, timezone: user.timezone },
    setCookie: sessionCookie(request, token, SESSION_TTL_MS / 1000),
  };
}

/**
 * A new session for a staff member who proved who they are elsewhere (single sign-on). Runs on
 * the caller's transaction, so the sign-in and what it provisioned commit together.
 */
export async function startStaffSession(request: Request, staff: { id: string; email: string }, db: Kysely<Database>): Promise<string> {
  const token = randomBytes(32).toString("base64url");
  const ip = clientIp(request);
  await db
    .insertInto("staff_sessions")
    .values({ id: sha256(token), staff_id: staff.id, expires_at: new Date(Date.now() + SESSION_TTL_MS), ip, user_agent: request.headers.get("user-agent")?.slice(0, 300) ?? null })
    .execute();
  const previous = readCookie(request, SESSION_COOKIE);
  if (previous) await db.deleteFrom("staff_sessions").where("id", "=", sha256(previous)).execute();
  await recordAudit(db, { id: staff.id, label: staff.email, ip }, { action: "auth.login_sso", targetType: "staff", targetId: staff.id });
  return sessionCookie(request, token, SESSION_TTL_MS / 1000);
}

/** An HttpOnly cookie for one short step (e.g. the sign-in's state); Secure as the session's. */
export function shortLivedCookie(request: Request, name: string, value: string, options: { path: string; maxAgeSeconds: number }): string {
  const parts = [`${name}=${value}`, `Path=${options.path}`, "HttpOnly", "SameSite=Lax", `Max-Age=${options.maxAgeSeconds}`];
  if (secureCookie(request)) parts.push("Secure");
  return parts.join("; ");
}

export async function logout(request: Request, db: Kysely<Database> = getDb()): Promise<string> {
  const token = readCookie(request, SESSION_COOKIE);
  if (token) {
    const staff = await getStaff(request, db);
    await db.deleteFrom("staff_sessions").where("id", "=", sha256(token)).execute();
    if (staff) await recordAudit(db, actorOf(staff, request), { action: "auth.logout", targetType: "staff", targetId: staff.id });
  }
  return sessionCookie(request, "", 0);
}

function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization");
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1] ?? null;
}

/** What an API call needs, and the key scopes that grant it: a ledger key reads balances too. */
export type ApiAccess = "ingest" | "ledger" | "read";
const GRANTED_BY: Record<ApiAccess, readonly ApiKeyScope[]> = { ingest: ["ingest"], ledger: ["ledger"], read: ["read", "ledger"] };

export type ApiCaller = { kind: "key"; scope: ApiKeyScope; actor: Actor } | { kind: "staff"; staff: Staff; actor: Actor };

function unavailableAs503(error: unknown): never {
  if (isDatabaseUnavailable(error)) throw databaseUnavailableResponse(true);
  throw error;
}

/**
 * A bearer key, looked up by hash on every request: no process keeps a key it found valid, so
 * a revocation or expiry holds at once everywhere. An address that sent too many wrong keys is
 * refused before the lookup; each key has a request budget.
 */
async function requireApiKey(request: Request, token: string, access: ApiAccess): Promise<ApiCaller> {
  const db = getDb();
  const address = clientIp(request);
  await refuseAddressOverFailedKeys(address);
  const key = await findActiveApiKey(db, sha256(token)).catch(unavailableAs503);
  if (!key) {
    await countFailedKey(address);
    throw jsonError(401, "invalid API key", {}, { "www-authenticate": "Bearer" });
  }
  await consumeKeyRequest(key.id);
  if (!GRANTED_BY[access].includes(key.scope)) throw jsonError(403, `this API key is for ${key.scope}, not ${access}`);
  noteApiKeyUse(db, key);
  return { kind: "key", scope: key.scope, actor: { id: null, label: `api-key:${key.name}`, ip: address } };
}

/**
 * /api/v1 access: a bearer key whose scope grants `access`, or (where a permission is given) a
 * staff session that has it. Throws a JSON 401/403/415/429 Response otherwise.
 */
export async function requireApiAccess(request: Request, access: ApiAccess, staffPermission?: Permission): Promise<ApiCaller> {
  const token = bearerToken(request);
  if (token) return requireApiKey(request, token, access);
  if (staffPermission) {
    const staff = await getStaff(request);
    if (staff) {
      if (!can(staff.role, staffPermission)) throw jsonError(403, `role ${staff.role} cannot do this`);
      // A cross-site form can post text/plain with the cookie and no preflight; it cannot post JSON.
      if (request.method !== "GET" && request.method !== "HEAD" && !isJsonContentType(request.headers.get("content-type"))) {
        throw jsonError(415, "content-type must be application/json");
      }
      return { kind: "staff", staff, actor: actorOf(staff, request) };
    }
  }
  throw jsonError(401, "missing credentials: send Authorization: Bearer <key>", {}, { "www-authenticate": "Bearer" });
}
