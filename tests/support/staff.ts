import type { Kysely } from "kysely";
import type { Database, StaffRole } from "../../db/types";
import { login } from "../../app/lib/auth.server";
import { createStaff } from "../../app/models/staff.server";

export const TEST_PASSWORD = "correct horse battery staple";

export interface TestStaff {
  id: string;
  email: string;
  role: StaffRole;
  cookie: string;
}

/** A staff member of `role` with a live session; `cookie` goes into a Cookie header. */
export async function staffSession(db: Kysely<Database>, role: StaffRole, email = `${role}-${Math.random().toString(36).slice(2, 8)}@test.local`): Promise<TestStaff> {
  const staff = await createStaff(db, { id: null, label: "test" }, { email, password: TEST_PASSWORD, role });
  const result = await login(new Request("http://localhost/login", { method: "POST" }), email, TEST_PASSWORD, db);
  if (!result.ok) throw new Error(`test login failed: ${result.message}`);
  const cookie = result.setCookie.split(";")[0] as string;
  return { id: staff.id, email, role, cookie };
}

/** A Request as a browser with that session would send it. */
export function requestAs(staff: TestStaff | null, url: string, init: RequestInit = {}): Request {
  const headers = new Headers(init.headers);
  if (staff) headers.set("cookie", staff.cookie);
  return new Request(new URL(url, "http://localhost").toString(), { ...init, headers });
}
