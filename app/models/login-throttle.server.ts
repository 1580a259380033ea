/**
 * Failed logins per (lower-cased email, client address), in the database so that every
 * process sees them and an admin unlock or the env bootstrap reaches them.
 */
import { sql, type Kysely } from "kysely";
import type { Database } from "../../db/types";
import { FORGET_FAILURES_MS, loginDelaySeconds } from "../domain/login-throttle";

/** Seconds the pair must still wait before its next attempt (0: it may try now). */
export async function loginWaitSeconds(db: Kysely<Database>, email: string, ip: string): Promise<number> {
  const row = await db
    .selectFrom("login_throttles")
    .select(sql<number>`ceil(extract(epoch FROM blocked_until - now()))::int`.as("wait"))
    .where("email", "=", email.toLowerCase())
    .where("ip", "=", ip)
    .where("blocked_until", ">", sql<Date>`now()`)
    .executeTakeFirst();
  return row ? Math.max(row.wait, 1) : 0;
}

/** Counts a failure of the pair; answers the seconds it must now wait. */
export async function recordLoginFailure(db: Kysely<Database>, email: string, ip: string): Promise<number> {
  const forgetBefore = sql<Date>`now() - ${`${FORGET_FAILURES_MS} milliseconds`}::interval`;
  const row = await db
    .insertInto("login_throttles")
    .values({ email: email.toLowerCase(), ip, failures: 1, last_failure_at: sql<Date>`now()` })
    .onConflict((oc) =>
      oc.columns(["email", "ip"]).doUpdateSet({
        failures: sql<number>`CASE WHEN login_throttles.last_failure_at < ${forgetBefore} THEN 1 ELSE login_throttles.failures + 1 END`,
        last_failure_at: sql<Date>`now()`,
      }),
    )
    .returning("failures")
    .executeTakeFirstOrThrow();
  const delay = loginDelaySeconds(row.failures);
  if (delay > 0) {
    await db
      .updateTable("login_throttles")
      .set({ blocked_until: sql<Date>`now() + ${`${delay} seconds`}::interval` })
      .where("email", "=", email.toLowerCase())
      .where("ip", "=", ip)
      .execute();
  }
  return delay;
}

export async function clearLoginFailures(db: Kysely<Database>, email: string, ip?: string): Promise<number> {
  let query = db.deleteFrom("login_throttles").where("email", "=", email.toLowerCase());
  if (ip !== undefined) query = query.where("ip", "=", ip);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Emails (lower-cased) that have at least one pair waiting now: the Staff page marks them. */
export async function throttledEmails(db: Kysely<Database>): Promise<Set<string>> {
  const rows = await db.selectFrom("login_throttles").select("email").distinct().where("blocked_until", ">", sql<Date>`now()`).execute();
  return new Set(rows.map((r) => r.email));
}
