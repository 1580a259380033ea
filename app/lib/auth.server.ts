/**
 * Staff sessions and API keys. Every loader and action starts with requireStaff (or
 * requireApiAccess for /api/v1): nothing is only hidden in the UI.
 */
import { createHash, randomBytes } from "node:crypto";
import { redirect } from "@remix-run/node";
import type { Kysely } from "kysely";
import { RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { ApiKeyScope, Database, StaffRole } from "../../db/types";
import { describeWait } from "../domain/login-throttle";
import { can, type Permission } from "../domain/permissions";
import { recordAudit, type Actor } from "../models/audit.server";
import { clearLoginFailures, loginWaitSeconds, recordLoginFailure } from "../models/login-throttle.server";
import { findStaffByEmail } from "../models/staff.server";
import { databaseUnavailableResponse, getDb, isDatabaseUnavailable } from "./db.server";
import { getEnv } from "./env.server";
import { clientIp, jsonError } from "./http.server";
import { hashPassword, verifyPassword } from "./password.server";

export { FREE_FAILED_LOGINS } from "../domain/login-throttle";

export const SESSION_COOKIE = "tb_session";
const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export interface Staff {
  id: string;
  email: string;
  name: string;
  role: StaffRole;
  timezone: string;
}

export function sha256(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

function readCookie(request: Request, name: string): string | null {
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

export async function logout(request: Request, db: Kysely<Database> = getDb()): Promise<string> {
  const token = readCookie(request, SESSION_COOKIE);
  if (token) {
    const staff = await getStaff(request, db);
    await db.deleteFrom("staff_sessions").where("id", "=", sha256(token)).execute();
    if (staff) await recordAudit(db, actorOf(staff, request), { action: "auth.logout", targetType: "staff", targetId: staff.id });
  }
  return sessionCookie(request, "", 0);
}

/**
 * Keys found valid, by hash, for API_KEY_CACHE_MS: the API answers most requests without the
 * key's round trip to the database. Only valid keys are kept (an unknown key is looked up
 * every time); a key revoked in the database (`revoked_at`; the app has no revoke path) stops
 * working in this process within API_KEY_CACHE_MS, and at once when re-registered through
 * registerApiKey.
 */
const API_KEY_CACHE_MS = 30_000;
const API_KEY_CACHE_MAX = 1_000;
const verifiedKeys = new Map<string, { name: string; scope: ApiKeyScope; until: number }>();

/** Drops every cached key check (a key may have changed scope or been un-revoked). */
function forgetVerifiedApiKeys(): void {
  verifiedKeys.clear();
}

/** Stores an API key (hashed: keys are high-entropy, so sha256 suffices and keeps checks fast). */
export async function registerApiKey(db: Kysely<Database>, name: string, scope: ApiKeyScope, key: string): Promise<void> {
  forgetVerifiedApiKeys();
  await db
    .insertInto("api_keys")
    .values({ name, scope, key_hash: sha256(key) })
    .onConflict((oc) => oc.column("key_hash").doUpdateSet({ name, scope, revoked_at: null }))
    .execute();
}

function bearerToken(request: Request): string | null {
  const header = request.headers.get("authorization");
  const match = header?.match(/^Bearer\s+(\S+)$/i);
  return match?.[1] ?? null;
}

export type ApiCaller = { kind: "key"; scope: ApiKeyScope; actor: Actor } | { kind: "staff"; staff: Staff; actor: Actor };

/**
 * /api/v1 access: a bearer key of exactly this scope, or (where a permission is given) a
 * staff session that has it. Throws a JSON 401/403 Response otherwise.
 */
export async function requireApiAccess(request: Request, scope: ApiKeyScope, staffPermission?: Permission): Promise<ApiCaller> {
  const db = getDb();
  const token = bearerToken(request);
  if (token) {
    const hash = sha256(token);
    const now = Date.now();
    let key = verifiedKeys.get(hash);
    if (!key || key.until <= now) {
      const row = await db
        .selectFrom("api_keys")
        .select(["name", "scope"])
        .where("key_hash", "=", hash)
        .where("revoked_at", "is", null)
        .executeTakeFirst()
        .catch((error: unknown) => {
          if (isDatabaseUnavailable(error)) throw databaseUnavailableResponse(true);
          throw error;
        });
      verifiedKeys.delete(hash);
      if (!row) throw jsonError(401, "invalid API key", {}, { "www-authenticate": "Bearer" });
      if (verifiedKeys.size >= API_KEY_CACHE_MAX) verifiedKeys.clear();
      key = { name: row.name, scope: row.scope, until: now + API_KEY_CACHE_MS };
      verifiedKeys.set(hash, key);
    }
    if (key.scope !== scope) throw jsonError(403, `this API key is for ${key.scope}, not ${scope}`);
    return { kind: "key", scope, actor: { id: null, label: `api-key:${key.name}`, ip: clientIp(request) } };
  }
  if (staffPermission) {
    const staff = await getStaff(request, db);
    if (staff) {
      if (!can(staff.role, staffPermission)) throw jsonError(403, `role ${staff.role} cannot do this`);
      return { kind: "staff", staff, actor: actorOf(staff, request) };
    }
  }
  throw jsonError(401, "missing credentials: send Authorization: Bearer <key>", {}, { "www-authenticate": "Bearer" });
}
