import { sql } from "kysely";
import { getDb } from "~/lib/db.server";

/** Liveness and database reachability, for load balancers and the start script. */
export async function loader() {
  try {
    await sql`SELECT 1`.execute(getDb());
    return Response.json({ ok: true, database: "up" });
  } catch {
    return Response.json({ ok: false, database: "down" }, { status: 503, headers: { "retry-after": "5" } });
  }
}
