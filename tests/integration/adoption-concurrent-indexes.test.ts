import fs from "node:fs";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { migrations } from "../../db/migrations";
import { prepareDatabase, USAGE_INDEXES } from "../../db/setup";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * Adopting a large database without blocking the app's writes: the operator builds tokenboard's
 * indexes on token_usage with CREATE INDEX CONCURRENTLY first (the README's block, run as written),
 * and the migrations keep them. A failed concurrent build is refused before anything changes.
 */
function readmeStatements(): string[] {
  const readme = fs.readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.split("### Adopting a large database")[1] ?? "";
  const block = /```sql\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  return block.split(";").map((s) => s.trim()).filter(Boolean);
}

let t: TestDatabase | undefined;
afterEach(async () => {
  await t?.drop();
  t = undefined;
});

/** A database as the app has it: the seed app's tables in their production shape (the fixture the other adoption tests load), with rows. */
async function appDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase({ empty: true, setAppUrl: false });
  await sql.raw(fs.readFileSync("tests/fixtures/seed-app-schema.sql", "utf8")).execute(db.db);
  await sql`
    INSERT INTO public.token_usage (user_id, action_type, model_used, tokens_used, success, metadata, created_at)
    SELECT gen_random_uuid(), 'chat_conversation', 'gpt-4o', 100 + g, g % 10 <> 0, '{}', now() - g * interval '1 minute'
    FROM generate_series(1, 2000) g`.execute(db.db);
  return db;
}

async function indexOids(t: TestDatabase): Promise<Record<string, { oid: number; valid: boolean }>> {
  const r = await sql<{ name: string; oid: number; valid: boolean }>`
    SELECT c.relname AS name, c.oid::int AS oid, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = 'public.token_usage'::regclass AND c.relname = ANY(${USAGE_INDEXES}::text[])`.execute(t.db);
  return Object.fromEntries(r.rows.map((row) => [row.name, { oid: row.oid, valid: row.valid }]));
}

describe("adopting a database whose indexes the operator built concurrently", () => {
  it("the README's statements build every index, and the migrations keep them (no rebuild)", async () => {
    t = await appDatabase();
    const statements = readmeStatements();
    expect(statements.filter((s) => /CONCURRENTLY/.test(s))).toHaveLength(USAGE_INDEXES.length);
    // One statement per call, outside any transaction, as psql runs a script.
    for (const statement of statements) await t.pool.query(statement);
    const built = await indexOids(t);
    expect(Object.keys(built).sort()).toEqual([...USAGE_INDEXES].sort());

    const prepared = await prepareDatabase(t.db);
    expect(prepared.migrations).toEqual(Object.keys(migrations));
    expect(prepared.initialRollup?.rows).toBe(2000);
    expect(await indexOids(t)).toEqual(built);
  });

  it("refuses an invalid index left by a failed concurrent build, naming it and the fix, before any migration", async () => {
    t = await appDatabase();
    await t.pool.query("ALTER TABLE public.token_usage ADD COLUMN IF NOT EXISTS event_id text");
    await t.pool.query("UPDATE public.token_usage SET event_id = 'same-id' WHERE tokens_used IN (101, 102)");
    await expect(t.pool.query("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS token_usage_event_id_key ON public.token_usage (event_id)")).rejects.toThrow(/could not create unique index/);
    expect((await indexOids(t)).token_usage_event_id_key?.valid).toBe(false);

    await expect(prepareDatabase(t.db)).rejects.toThrow(
      /index token_usage_event_id_key on token_usage is invalid.*DROP INDEX CONCURRENTLY public\.token_usage_event_id_key.*Nothing was changed/,
    );
    const touched = await sql<{ migrations: string | null; schema: string | null }>`
      SELECT to_regclass('public.tokenboard_migration')::text AS migrations, to_regnamespace('tokenboard')::text AS schema`.execute(t.db);
    expect(touched.rows[0]).toEqual({ migrations: null, schema: null });
  });
});
