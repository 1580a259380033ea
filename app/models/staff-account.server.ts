/**
 * Staff self-service: one's own password and time zone, and admin-issued one-time reset links.
 * A new password ends the person's other sessions (all of them after a reset), so a session
 * someone else holds does not outlive it.
 */
import { randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";
import type { Database } from "../../db/types";
import { RESET_LINK_UNUSABLE } from "../domain/account-forms";
import { sha256 } from "../lib/auth.server";
import { hashPassword, verifyPassword } from "../lib/password.server";
import { recordAudit, type Actor } from "./audit.server";
import { describeWait } from "../domain/login-throttle";
import { clearLoginFailures, loginWaitSeconds, recordLoginFailure } from "./login-throttle.server";

export type AccountChangeResult = { ok: true } | { ok: false; field: string; message: string };

/** How long an admin-issued reset link works. */
export const RESET_LINK_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Changes one's own password (the current one required); ends every session but
 * `keepSessionId`'s. Wrong current passwords count like failed logins from that address, so a
 * borrowed session cannot be used to guess the password.
 */
export async function changeOwnPassword(
  db: Kysely<Database>,
  actor: Actor,
  input: { staffId: string; currentPassword: string; newPassword: string; keepSessionId: string | null },
): Promise<AccountChangeResult> {
  const row = await db.selectFrom("staff_users").select(["password_hash", "email"]).where("id", "=", input.staffId).executeTakeFirstOrThrow();
  const address = actor.ip || "unknown";
  const wait = await loginWaitSeconds(db, row.email, address);
  if (wait > 0) return { ok: false, field: "current_password", message: `too many wrong passwords: wait ${describeWait(wait)}` };
  if (!(await verifyPassword(row.password_hash, input.currentPassword))) {
    await recordLoginFailure(db, row.email, address);
    return { ok: false, field: "current_password", message: "is not your current password" };
  }
  const passwordHash = await hashPassword(input.newPassword);
  await db.transaction().execute(async (trx) => {
    await trx.updateTable("staff_users").set({ password_hash: passwordHash, updated_at: sql`now()` }).where("id", "=", input.staffId).execute();
    const ended = await trx
      .deleteFrom("staff_sessions")
      .where("staff_id", "=", input.staffId)
      .$if(input.keepSessionId !== null, (q) => q.where("id", "!=", input.keepSessionId as string))
      .executeTakeFirst();
    await recordAudit(trx, actor, {
      action: "staff.password_change",
      targetType: "staff",
      targetId: input.staffId,
      after: { email: row.email, otherSessionsEnded: Number(ended.numDeletedRows) },
    });
  });
  return { ok: true };
}

export async function setOwnTimezone(db: Kysely<Database>, actor: Actor, staffId: string, timezone: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom("staff_users").select("timezone").where("id", "=", staffId).forUpdate().executeTakeFirstOrThrow();
    if (before.timezone === timezone) return;
    await trx.updateTable("staff_users").set({ timezone, updated_at: sql`now()` }).where("id", "=", staffId).execute();
    await recordAudit(trx, actor, { action: "staff.timezone", targetType: "staff", targetId: staffId, before: { timezone: before.timezone }, after: { timezone } });
  });
}

/**
 * A new one-time reset link for a staff member: its token is returned once and stored only as
 * a hash; earlier unused links of that person stop working.
 */
export async function createPasswordResetLink(db: Kysely<Database>, actor: Actor, staffId: string): Promise<{ ok: true; token: string; email: string; expiresAt: Date } | { ok: false; field: string; message: string }> {
  const token = randomBytes(32).toString("base64url");
  const expiresAt = new Date(Date.now() + RESET_LINK_TTL_MS);
  return db.transaction().execute(async (trx) => {
    const target = await trx.selectFrom("staff_users").select("email").where("id", "=", staffId).executeTakeFirst();
    if (!target) return { ok: false as const, field: "staff_id", message: "no such staff member" };
    await trx.updateTable("staff_password_resets").set({ used_at: sql`now()` }).where("staff_id", "=", staffId).where("used_at", "is", null).execute();
    await trx.insertInto("staff_password_resets").values({ token_hash: sha256(token), staff_id: staffId, created_by: actor.id ?? null, expires_at: expiresAt }).execute();
    await recordAudit(trx, actor, { action: "staff.reset_link", targetType: "staff", targetId: staffId, after: { email: target.email, expiresAt: expiresAt.toISOString() } });
    return { ok: true as const, token, email: target.email, expiresAt };
  });
}

/** The staff member a reset token is for, while it is unused and unexpired. */
export async function findPasswordReset(db: Kysely<Database>, token: string): Promise<{ email: string; expiresAt: Date } | null> {
  const row = await db
    .selectFrom("staff_password_resets as r")
    .innerJoin("staff_users as u", "u.id", "r.staff_id")
    .select(["u.email", "r.expires_at"])
    .where("r.token_hash", "=", sha256(token))
    .where("r.used_at", "is", null)
    .where("r.expires_at", ">", sql<Date>`now()`)
    .executeTakeFirst();
  return row ? { email: row.email, expiresAt: row.expires_at } : null;
}

/**
 * Sets a new password through a reset link: the link is used up in the same transaction (two
 * submissions at once: one wins), every session of the person ends and their login throttling
 * is cleared.
 */
export async function resetPasswordWithToken(db: Kysely<Database>, token: string, newPassword: string, ip: string | null): Promise<AccountChangeResult> {
  const passwordHash = await hashPassword(newPassword);
  return db.transaction().execute(async (trx) => {
    const used = await trx
      .updateTable("staff_password_resets")
      .set({ used_at: sql`now()` })
      .where("token_hash", "=", sha256(token))
      .where("used_at", "is", null)
      .where("expires_at", ">", sql<Date>`now()`)
      .returning("staff_id")
      .executeTakeFirst();
    if (!used) return { ok: false as const, field: "form", message: RESET_LINK_UNUSABLE };
    const staff = await trx
      .updateTable("staff_users")
      .set({ password_hash: passwordHash, updated_at: sql`now()` })
      .where("id", "=", used.staff_id)
      .returning(["id", "email"])
      .executeTakeFirstOrThrow();
    const ended = await trx.deleteFrom("staff_sessions").where("staff_id", "=", staff.id).executeTakeFirst();
    await clearLoginFailures(trx, staff.email);
    await recordAudit(trx, { id: staff.id, label: staff.email, ip }, {
      action: "staff.password_reset",
      targetType: "staff",
      targetId: staff.id,
      after: { sessionsEnded: Number(ended.numDeletedRows) },
    });
    return { ok: true as const };
  });
}
