/**
 * A background job in a process of its own, so a test can kill it for real (SIGKILL) in the
 * middle of its work: `node --import tsx tests/support/hardening-job-child.ts <rollup|outliers> [arg]`
 * with DATABASE_URL set. `rollup` takes the batch size, `outliers` the run's `now` (ISO).
 * Connections carry application_name "hardening-<job>", so the test finds the backend in
 * pg_stat_activity. Prints "started" once connected and "done <json>" when the job finishes.
 */
import { sql } from "kysely";
import { createDb } from "../../db/database";
import { runRollup } from "../../app/models/rollup.server";
import { detectOutliers } from "../../app/models/outliers.server";

const [job, arg] = process.argv.slice(2);
const base = process.env.DATABASE_URL;
if (!base || (job !== "rollup" && job !== "outliers")) {
  console.error("usage: DATABASE_URL=… hardening-job-child.ts <rollup|outliers> [arg]");
  process.exit(2);
}
const url = new URL(base);
url.searchParams.set("application_name", `hardening-${job}`);
const { db } = createDb(url.toString(), 2);
await sql`SELECT 1`.execute(db);
console.log("started");
const result = job === "rollup" ? await runRollup(db, { batchSize: Number(arg ?? 1000) }) : await detectOutliers(db, { now: arg ? new Date(arg) : undefined });
console.log(`done ${JSON.stringify(result)}`);
await db.destroy();
