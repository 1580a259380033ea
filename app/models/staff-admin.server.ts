/**
 * Staff management for admins: create, change role, disable/enable. The last active admin
 * can neither be demoted nor disabled; the check runs under a lock inside the transaction,
 * so two admins demoting each other at once cannot both succeed.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import { z } from "zod";
import type { Database, StaffRole } from "../../db/types";
import { ROLES } from "../domain/permissions";
import { STORABLE_TEXT, UNSTORABLE_MESSAGE } from "../domain/storable-text";
import { recordAudit, type Actor } from "./audit.server";
import { clearLoginFailures } from "./login-throttle.server";
import { createStaff, findStaffByEmail, type StaffSummary } from "./staff.server";

export const roleSchema = z.enum(ROLES as [StaffRole, ...StaffRole[]], { errorMap: () => ({ message: `must be one of ${ROLES.join(", ")}` }) });

export const newStaffSchema = z.object({
  email: z.string().trim().toLowerCase().email("must be an email address").max(254),
  name: z.string().trim().max(100, "must be at most 100 characters").regex(STORABLE_TEXT, UNSTORABLE_MESSAGE).default(""),
  role: roleSchema,
  password: z.string().min(12, "must be at least 12 characters").max(200, "must be at most 200 characters"),
});

export type StaffChangeResult = { ok: true } | { ok: false; field: string; message: string };

export async function listStaff(db: Kysely<Database>): Promise<(StaffSummary & { created_at: Date })[]> {
  return db.selectFrom("staff_users").select(["id", "email", "name", "role", "timezone", "disabled_at", "created_at"]).orderBy("email").execute();
}

export async function createStaffMember(db: Kysely<Database>, actor: Actor, input: z.infer<typeof newStaffSchema>): Promise<StaffChangeResult> {
  if (await findStaffByEmail(db, input.email)) return { ok: false, field: "email", message: "a staff member with this email already exists" };
  try {
    await createStaff(db, actor, input);
    return { ok: true };
  } catch (error) {
    // Two admins creating the same email at once: the unique index decides.
    if ((error as { code?: string }).code === "23505") return { ok: false, field: "email", message: "a staff member with this email already exists" };
    throw error;
  }
}

async function lockAdmins(trx: Transaction<Database>): Promise<number> {
  await sql`SELECT pg_advisory_xact_lock(hashtext('tokenboard:staff-admins'))`.execute(trx);
  const row = await trx
    .selectFrom("staff_users")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("role", "=", "admin")
    .where("disabled_at", "is", null)
    .executeTakeFirstOrThrow();
  return row.n;
}

const LAST_ADMIN = "this is the last active admin: make another admin first";

export async function changeStaffRole(db: Kysely<Database>, actor: Actor, staffId: string, role: StaffRole): Promise<StaffChangeResult> {
  return db.transaction().execute(async (trx) => {
    const admins = await lockAdmins(trx);
    const target = await trx.selectFrom("staff_users").select(["role", "disabled_at", "email"]).where("id", "=", staffId).forUpdate().executeTakeFirst();
    if (!target) return { ok: false, field: "staff_id", message: "no such staff member" };
    if (target.role === role) return { ok: true };
    if (target.role === "admin" && target.disabled_at === null && admins <= 1) return { ok: false, field: "role", message: LAST_ADMIN };
    await trx.updateTable("staff_users").set({ role, updated_at: sql`now()` }).where("id", "=", staffId).execute();
    await recordAudit(trx, actor, { action: "staff.role", targetType: "staff", targetId: staffId, before: { email: target.email, role: target.role }, after: { role } });
    return { ok: true };
  });
}

export async function setStaffDisabled(db: Kysely<Database>, actor: Actor, staffId: string, disabled: boolean): Promise<StaffChangeResult> {
  return db.transaction().execute(async (trx) => {
    const admins = await lockAdmins(trx);
    const target = await trx.selectFrom("staff_users").select(["role", "disabled_at", "email"]).where("id", "=", staffId).forUpdate().executeTakeFirst();
    if (!target) return { ok: false, field: "staff_id", message: "no such staff member" };
    if ((target.disabled_at !== null) === disabled) return { ok: true };
    if (disabled && target.role === "admin" && admins <= 1) return { ok: false, field: "staff_id", message: LAST_ADMIN };
    await trx.updateTable("staff_users").set({ disabled_at: disabled ? sql`now()` : null, updated_at: sql`now()` }).where("id", "=", staffId).execute();
    // A disabled account is logged out everywhere at once.
    if (disabled) await trx.deleteFrom("staff_sessions").where("staff_id", "=", staffId).execute();
    await recordAudit(trx, actor, { action: disabled ? "staff.disable" : "staff.enable", targetType: "staff", targetId: staffId, before: { email: target.email, disabled: !disabled }, after: { disabled } });
    return { ok: true };
  });
}

/** Clears the login throttling of a staff member's email, from every address; audited. */
export async function unlockStaffLogin(db: Kysely<Database>, actor: Actor, staffId: string): Promise<StaffChangeResult> {
  return db.transaction().execute(async (trx) => {
    const target = await trx.selectFrom("staff_users").select("email").where("id", "=", staffId).executeTakeFirst();
    if (!target) return { ok: false, field: "staff_id", message: "no such staff member" };
    const cleared = await clearLoginFailures(trx, target.email);
    await recordAudit(trx, actor, { action: "staff.unlock", targetType: "staff", targetId: staffId, before: { email: target.email, throttledAddresses: cleared }, after: { throttledAddresses: 0 } });
    return { ok: true };
  });
}
