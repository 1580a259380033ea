import { sql, type Kysely } from "kysely";
import type { Database, StaffRole, StaffUser } from "../../db/types";
import { hashPassword, verifyPassword } from "../lib/password.server";
import { recordAudit, type Actor } from "./audit.server";
import { clearLoginFailures } from "./login-throttle.server";

export type StaffSummary = Pick<StaffUser, "id" | "email" | "name" | "role" | "timezone" | "disabled_at">;

export async function findStaffByEmail(db: Kysely<Database>, email: string): Promise<StaffUser | undefined> {
  return db
    .selectFrom("staff_users")
    .selectAll()
    .where(sql<string>`lower(email)`, "=", email.toLowerCase())
    .executeTakeFirst();
}

export async function createStaff(
  db: Kysely<Database>,
  actor: Actor,
  input: { email: string; name?: string; password: string; role: StaffRole },
): Promise<StaffSummary> {
  const passwordHash = await hashPassword(input.password);
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto("staff_users")
      .values({ email: input.email, name: input.name ?? "", password_hash: passwordHash, role: input.role })
      .returning(["id", "email", "name", "role", "timezone", "disabled_at"])
      .executeTakeFirstOrThrow();
    await recordAudit(trx, actor, {
      action: "staff.create",
      targetType: "staff",
      targetId: row.id,
      after: { email: row.email, role: row.role },
    });
    return row;
  });
}

/**
 * The bootstrap admin of TOKENBOARD_ADMIN_EMAIL/PASSWORD: created when missing; when it
 * exists, its password and admin role are made to match the environment, it is re-enabled and
 * its login throttling cleared, so that the environment stays the way to regain access. A
 * password that changed ends the admin's sessions; an unchanged one (a plain restart) does not.
 */
export async function ensureAdmin(db: Kysely<Database>, email: string, password: string): Promise<"created" | "updated"> {
  const existing = await findStaffByEmail(db, email);
  if (!existing) {
    await createStaff(db, { id: null, label: "bootstrap" }, { email, name: "Administrator", password, role: "admin" });
    await clearLoginFailures(db, email);
    return "created";
  }
  const passwordChanged = !(await verifyPassword(existing.password_hash, password));
  const passwordHash = await hashPassword(password);
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable("staff_users")
      .set({ password_hash: passwordHash, role: "admin", disabled_at: null, locked_until: null, failed_logins: 0, updated_at: new Date() })
      .where("id", "=", existing.id)
      .execute();
    await clearLoginFailures(trx, email);
    if (passwordChanged) await trx.deleteFrom("staff_sessions").where("staff_id", "=", existing.id).execute();
    await recordAudit(trx, { id: null, label: "bootstrap" }, {
      action: "staff.bootstrap",
      targetType: "staff",
      targetId: existing.id,
      before: { role: existing.role, disabled: existing.disabled_at !== null },
      after: { role: "admin", disabled: false, passwordChanged, throttlingCleared: true },
    });
  });
  return "updated";
}
