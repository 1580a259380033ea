/**
 * Demo mode (no DATABASE_URL): demo data on the first run, and demo staff accounts whose
 * logins are printed on every start.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { Kysely } from "kysely";
import type { Database, StaffRole } from "../types";
import type { Env } from "../../app/lib/env.server";
import { createStaff, findStaffByEmail } from "../../app/models/staff.server";
import { generateDemoData } from "./generator";

const DEMO_FLAG = "demo_data";

export async function loadDemoDataOnce(db: Kysely<Database>, databaseUrl: string, env: Env, log: (line: string) => void): Promise<void> {
  const flag = await db.selectFrom("settings").select("value").where("key", "=", DEMO_FLAG).executeTakeFirst();
  if (flag) return;
  log(`loading demo data: ${env.TOKENBOARD_DEMO_USERS.toLocaleString("en-US")} users, ${env.TOKENBOARD_DEMO_ROWS.toLocaleString("en-US")} usage rows over ${env.TOKENBOARD_DEMO_DAYS} days`);
  let lastPercent = -1;
  const result = await generateDemoData(databaseUrl, {
    users: env.TOKENBOARD_DEMO_USERS,
    rows: env.TOKENBOARD_DEMO_ROWS,
    days: env.TOKENBOARD_DEMO_DAYS,
    seed: 42,
    now: new Date(),
    onProgress: (done, total) => {
      // One line per tenth of the work, with the share actually done.
      const tenth = Math.floor((done / total) * 10);
      if (tenth !== lastPercent) {
        lastPercent = tenth;
        log(`  demo data ${Math.round((done / total) * 100)}% (${done.toLocaleString("en-US")} / ${total.toLocaleString("en-US")} rows)`);
      }
    },
  });
  await db
    .insertInto("settings")
    .values({ key: DEMO_FLAG, value: JSON.stringify({ loadedAt: new Date().toISOString(), ...result }) })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
  log(`demo data loaded: ${result.rows.toLocaleString("en-US")} rows in ${(result.ms / 1000).toFixed(1)} s`);
}

export interface DemoAccount {
  role: StaffRole;
  email: string;
  password: string;
}

/**
 * Creates the demo staff accounts once and keeps their passwords in <data dir>/demo-accounts.json
 * (readable by the owner only) so that every start can print them again.
 */
export async function ensureDemoAccounts(db: Kysely<Database>, dataDir: string, includeAdmin: boolean): Promise<DemoAccount[]> {
  const file = path.join(dataDir, "demo-accounts.json");
  const saved: DemoAccount[] = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as DemoAccount[]) : [];
  const roles: StaffRole[] = includeAdmin ? ["admin", "support", "analyst"] : ["support", "analyst"];
  const accounts: DemoAccount[] = [];
  for (const role of roles) {
    const email = `${role}@tokenboard.local`;
    const known = saved.find((a) => a.email === email);
    const exists = await findStaffByEmail(db, email);
    if (known && exists) {
      accounts.push(known);
      continue;
    }
    const password = `demo-${randomBytes(6).toString("base64url")}`;
    if (exists) {
      const { hashPassword } = await import("../../app/lib/password.server");
      await db.updateTable("staff_users").set({ password_hash: await hashPassword(password) }).where("id", "=", exists.id).execute();
    } else {
      await createStaff(db, { id: null, label: "demo" }, { email, name: `Demo ${role}`, password, role });
    }
    accounts.push({ role, email, password });
  }
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(accounts, null, 2), { mode: 0o600 });
  return accounts;
}
