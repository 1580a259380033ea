import { randomBytes } from "node:crypto";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createDb, createPool } from "../../db/database";
import { migrateDown } from "../../db/migrate";
import { migrations } from "../../db/migrations";
import { generateDemoData } from "../../db/seed/generator";
import { prepareDatabase } from "../../db/setup";
import type { Database } from "../../db/types";
import { makeRange } from "../../app/domain/period";
import { login, registerApiKey } from "../../app/lib/auth.server";
import { detectOutliers } from "../../app/models/outliers.server";
import { setOverride } from "../../app/models/overrides.server";
import { createStaff } from "../../app/models/staff.server";
import { overviewUsage } from "../../app/routes/overview/queries.server";
import { ADOPTION_SETTING, adoptBillingOnce } from "../../app/models/billing-adoption.server";

/**
 * Every migration down and up again, on a copy (CREATE DATABASE … TEMPLATE) of a demo database.
 *
 * What survives, by design:
 * - the seed app's tables — public.token_usage, public.ai_action_token_overrides,
 *   public.ai_model_pricing — keep every row, unchanged, through every step down and back up
 *   (0001's down drops nothing; 0002's down keeps route and event_id, only its indexes go);
 * - tokenboard's migration bookkeeping (public.tokenboard_migration, _lock);
 * - tokenboard's own tables keep their rows while a newer migration is rolled back (a table
 *   whose columns a down drops keeps its row count), until the migration that created them is
 *   rolled back: 0003_tokenboard_core's down drops the whole `tokenboard` schema, so staff,
 *   sessions, API keys, audit log, override history, ledger, balances and settings are gone after
 *   the last step down, and up again recreates them empty (the rollups rebuilt from the rows).
 */
// The seed app owns its billing tables too (created by 0024 when missing, never dropped).
const SEED_TABLES = ["public.ai_action_token_overrides", "public.ai_model_pricing", "public.household_members", "public.households", "public.token_transactions", "public.token_usage"];
const BOOKKEEPING = ["public.tokenboard_migration", "public.tokenboard_migration_lock"];
const CORE_TABLES = ["api_keys", "app_users", "audit_log", "ledger_entries", "login_attempts", "override_history", "settings", "staff_sessions", "staff_users", "token_balances"].map((t) => `tokenboard.${t}`);

interface TableFingerprint {
  columns: string;
  n: number;
  digest: string;
}

const admin = () => createPool(inject("pgServerUrl"), 1);
function urlFor(name: string): string {
  const url = new URL(inject("pgServerUrl"));
  url.pathname = `/${name}`;
  return url.toString();
}

/** Row count and md5 of every row (ordered by its text) of every table in public and tokenboard. */
async function fingerprint(db: Kysely<Database>): Promise<Record<string, TableFingerprint>> {
  const tables = await sql<{ name: string; columns: string }>`
    SELECT c.table_schema || '.' || c.table_name AS name, string_agg(c.column_name || ':' || c.data_type, ',' ORDER BY c.ordinal_position) AS columns
    FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
    WHERE c.table_schema IN ('public', 'tokenboard') AND t.table_type = 'BASE TABLE'
    GROUP BY 1 ORDER BY 1`.execute(db);
  const out: Record<string, TableFingerprint> = {};
  for (const table of tables.rows) {
    const [schema, name] = table.name.split(".") as [string, string];
    const r = await sql<{ n: number; digest: string | null }>`
      SELECT count(*)::int AS n, md5(string_agg(x.t, E'\n' ORDER BY x.t)) AS digest
      FROM (SELECT r::text AS t FROM ${sql.table(`${schema}.${name}`)} r) x`.execute(db);
    out[table.name] = { columns: table.columns, n: r.rows[0]?.n ?? 0, digest: r.rows[0]?.digest ?? "" };
  }
  return out;
}

const pick = (f: Record<string, TableFingerprint>, names: readonly string[]) => Object.fromEntries(names.map((n) => [n, f[n]]));

let source: string;
let copy: string;
let db: Kysely<Database>;
let original: Record<string, TableFingerprint>;

beforeAll(async () => {
  source = `h_src_${randomBytes(5).toString("hex")}`;
  copy = `h_copy_${randomBytes(5).toString("hex")}`;
  const pool = admin();
  await pool.query(`CREATE DATABASE ${source} TEMPLATE ${inject("pgTemplate")}`);
  await pool.end();
  const now = new Date("2025-05-20T15:45:00Z");
  await generateDemoData(urlFor(source), { users: 80, rows: 6_000, days: 30, seed: 7, now });
  // Rows in every other table of tokenboard too: staff, a session, audit, override history, API key, flags.
  const src = createDb(urlFor(source), 2);
  // The demo's billing history adopted into the ledger, as a demo start does after loading (the template adopted nothing).
  await src.db.deleteFrom("settings").where("key", "=", ADOPTION_SETTING).execute();
  expect(await adoptBillingOnce(src.db, { now })).not.toBeNull();
  const staff = await createStaff(src.db, { id: null, label: "test" }, { email: "roundtrip-admin@test.local", password: "correct horse battery staple", role: "admin" });
  expect((await login(new Request("http://localhost/login", { method: "POST" }), staff.email, "correct horse battery staple", src.db)).ok).toBe(true);
  const changed = await setOverride(src.db, { id: staff.id, label: staff.email }, { actionType: "image_generation", value: 30, reason: "round-trip test" });
  expect(changed.ok).toBe(true);
  await registerApiKey(src.db, "round trip", "ingest", "roundtrip-ingest-key-0123456789");
  await detectOutliers(src.db, { full: true });
  original = await fingerprint(src.db);
  await src.db.destroy();

  const pool2 = admin();
  await pool2.query(`CREATE DATABASE ${copy} TEMPLATE ${source}`);
  await pool2.end();
  db = createDb(urlFor(copy), 2).db;
}, 120_000);

afterAll(async () => {
  await db?.destroy();
  const pool = admin();
  for (const name of [copy, source]) if (name) await pool.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
  await pool.end();
});

describe("migrations down and up on a copy of the demo database", () => {
  it("the copy starts identical to the demo database, with rows in every table that matters", async () => {
    expect(await fingerprint(db)).toEqual(original);
    for (const table of [...SEED_TABLES, ...CORE_TABLES, "tokenboard.outlier_flags", "tokenboard.usage_rollup_day"]) {
      expect(original[table]?.n, table).toBeGreaterThan(0);
    }
  });

  it("each step down keeps every row of every table it does not drop, and only 0003 drops tokenboard's core tables", async () => {
    const droppedBy: Record<string, string> = {};
    const steps: string[] = [];
    for (;;) {
      const rolledBack = await migrateDown(db);
      if (rolledBack.length === 0) break;
      const step = rolledBack.join(",");
      steps.push(step);
      const now = await fingerprint(db);
      for (const [table, before] of Object.entries(original)) {
        if (BOOKKEEPING.includes(table)) continue;
        const after = now[table];
        if (!after) {
          droppedBy[table] ??= step;
          continue;
        }
        // 0027's down gives adopted entries their source row as idempotency key, for the older CHECKs.
        const keyed = table === "tokenboard.ledger_entries" && steps.includes("0027_adopted_entries");
        if (after.columns === before.columns && !keyed) expect(after, `${table} after rolling back ${step}`).toEqual(before);
        else expect(after.n, `${table} rows after rolling back ${step} (columns dropped)`).toBe(before.n);
      }
    }
    expect(steps.at(-1)).toBe("0001_seed_app_tables");
    // Never a table of the seed app; tokenboard's core tables only with their own migration.
    expect(Object.keys(droppedBy).filter((t) => !t.startsWith("tokenboard."))).toEqual([]);
    for (const table of CORE_TABLES) expect(droppedBy[table], table).toBe("0003_tokenboard_core");
  });

  it("at the bottom exactly the seed app's tables (and the migration bookkeeping) remain, with every row", async () => {
    const bottom = await fingerprint(db);
    expect(Object.keys(bottom).sort()).toEqual([...SEED_TABLES, ...BOOKKEEPING].sort());
    expect(pick(bottom, SEED_TABLES)).toEqual(pick(original, SEED_TABLES));
    const schema = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'tokenboard'`.execute(db);
    expect(schema.rows[0]?.n).toBe(0);
  });

  it("up again plus prepareDatabase keeps every seed row, and the dashboard totals equal raw SQL", async () => {
    const prepared = await prepareDatabase(db);
    expect(prepared.migrations).toEqual(Object.keys(migrations));
    expect(prepared.initialRollup?.rows).toBe(original["public.token_usage"]?.n);
    const after = await fingerprint(db);
    expect(pick(after, SEED_TABLES)).toEqual(pick(original, SEED_TABLES));
    // Every table is back with its columns; tokenboard's own rows did not survive 0003's down.
    expect(Object.keys(after).sort()).toEqual(Object.keys(original).sort());
    for (const [table, before] of Object.entries(original)) expect(after[table]?.columns, table).toBe(before.columns);
    for (const table of ["tokenboard.staff_users", "tokenboard.outlier_flags"]) expect(after[table]?.n, table).toBe(0);
    // The ledger is adopted again from the seed's token_transactions, which survived (with its one audit row).
    expect(prepared.billingAdoption?.transactions).toBeGreaterThan(0);
    expect(after["tokenboard.audit_log"]?.n).toBe(1);

    const range = makeRange("2024-01-01", "2026-12-31", "UTC");
    const raw = await sql<{ tokens: number; calls: number; failures: number }>`
      SELECT COALESCE(sum(tokens_used), 0)::bigint AS tokens, count(*)::bigint AS calls, count(*) FILTER (WHERE NOT success)::bigint AS failures
      FROM public.token_usage WHERE created_at >= ${range.start} AND created_at < ${range.end}`.execute(db);
    const all = await sql<{ n: number }>`SELECT count(*)::bigint AS n FROM public.token_usage`.execute(db);
    expect(raw.rows[0]?.calls).toBe(all.rows[0]?.n);
    const totals = (await overviewUsage(db, range)).totals;
    expect({ tokens: totals.tokens, calls: totals.calls, failures: totals.failures }).toEqual(raw.rows[0]);
  });
});
