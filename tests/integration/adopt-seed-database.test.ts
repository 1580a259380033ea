import fs from "node:fs";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateDown } from "../../db/migrate";
import { prepareDatabase } from "../../db/setup";
import type { Database } from "../../db/types";
import { checkActionTypeDrift, readConstraintTypes } from "../../app/models/action-type-sync.server";
import { makeRange } from "../../app/domain/period";
import { overviewUsage } from "../../app/routes/overview/queries.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * A database of the seed app, in its production shape (shared/reference/seed-app-schema.sql,
 * copied to tests/fixtures), with rows — including action types the registry does not know.
 * tokenboard must adopt it: add only what is missing, rewrite and lose no row.
 */
let t: TestDatabase;

const SEED_ROWS = 5_000;

async function fingerprint(db: Kysely<Database>) {
  const result = await sql<{ n: number; tokens: number; cost: string; digest: string; ctids: string }>`
    SELECT count(*)::bigint AS n,
           COALESCE(sum(tokens_used), 0)::bigint AS tokens,
           COALESCE(sum(calculated_cost_cents), 0)::text AS cost,
           md5(string_agg(md5((id, user_id, action_type, model_used, tokens_used, input_tokens, output_tokens, success,
             error_message, metadata, created_at, calculated_cost_cents, reconciliation_status)::text), '' ORDER BY id)) AS digest,
           md5(string_agg(ctid::text, ',' ORDER BY id)) AS ctids
    FROM public.token_usage`.execute(db);
  const overrides = await sql<{ digest: string }>`
    SELECT md5(string_agg((action_type, token_value)::text, ',' ORDER BY action_type)) AS digest FROM public.ai_action_token_overrides
    WHERE action_type IN ('image_generation', 'vibrational_analysis')`.execute(db);
  const pricing = await sql<{ digest: string }>`
    SELECT md5(string_agg((model_name, input_price_per_1m, output_price_per_1m)::text, ',' ORDER BY model_name)) AS digest FROM public.ai_model_pricing`.execute(db);
  return { ...result.rows[0], overrides: overrides.rows[0]?.digest, pricing: pricing.rows[0]?.digest };
}

beforeAll(async () => {
  t = await createTestDatabase({ empty: true });
  await sql.raw(fs.readFileSync("tests/fixtures/seed-app-schema.sql", "utf8")).execute(t.db);
  // Rows as the seed app writes them: registered types, and legacy types the registry lacks.
  await sql`
    INSERT INTO public.token_usage (user_id, action_type, model_used, tokens_used, input_tokens, output_tokens, success, created_at, calculated_cost_cents, metadata)
    SELECT ('00000000-0000-4000-8000-' || lpad((g % 97)::text, 12, '0'))::uuid,
           (ARRAY['chat_conversation','assessment_scoring','vibrational_analysis','subscription_grant','image_generation','viva_scene_generation'])[1 + g % 6],
           (ARRAY['gpt-4o','gpt-4o-mini','dall-e-3'])[1 + g % 3],
           (g * 37) % 5000, (g * 17) % 3000, (g * 20) % 2000,
           g % 50 <> 0,
           timestamptz '2025-01-01 00:00:00+00' + (g || ' minutes')::interval,
           ((g * 13) % 1000) / 100.0,
           jsonb_build_object('n', g)
    FROM generate_series(1, ${SEED_ROWS}) AS g`.execute(t.db);
  await sql`INSERT INTO public.ai_action_token_overrides (action_type, token_value) VALUES ('image_generation', 30), ('vibrational_analysis', 5)`.execute(t.db);
  await sql`INSERT INTO public.ai_model_pricing (model_name, input_price_per_1m, output_price_per_1m) VALUES ('gpt-4o', 2.50, 10.00), ('gpt-4o-mini', 0.15, 0.60)`.execute(t.db);
});
afterAll(async () => t.drop());

describe("adopting the seed app's database", () => {
  it("migrates without losing, changing or moving a row, and keeps overrides and pricing as they were", async () => {
    const before = await fingerprint(t.db);
    expect(before.n).toBe(SEED_ROWS);
    const result = await prepareDatabase(t.db);
    expect(result.migrations.length).toBeGreaterThan(0);
    const after = await fingerprint(t.db);
    // ctids unchanged: no row was rewritten (ADD COLUMN without default is catalog-only).
    expect(after).toEqual(before);
  });

  it("adds tokenboard's columns to token_usage without rewriting it", async () => {
    const columns = await sql<{ column_name: string }>`
      SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'token_usage'`.execute(t.db);
    const names = columns.rows.map((c) => c.column_name);
    expect(names).toContain("route");
    expect(names).toContain("event_id");
  });

  it("keeps every type the seed constraint allowed and adds none of the registry's it already had", async () => {
    const types = new Set(await readConstraintTypes(t.db));
    for (const legacy of ["vibrational_analysis", "subscription_grant", "viva_scene_generation", "frequency_flip"]) {
      expect(types.has(legacy)).toBe(true);
    }
    // The seed app can still write its legacy types.
    await sql`INSERT INTO public.token_usage (user_id, action_type, model_used) VALUES ('00000000-0000-4000-8000-000000000001', 'north_star_reflection', 'gpt-4o')`.execute(t.db);
    await sql`DELETE FROM public.token_usage WHERE action_type = 'north_star_reflection'`.execute(t.db);
  });

  it("names every disagreement between registry and database", async () => {
    const messages = (await checkActionTypeDrift(t.db)).items.map((i) => i.message);
    expect(messages).toContain("constraint allows unregistered type vibrational_analysis");
    expect(messages).toContain("override for unregistered type vibrational_analysis");
    expect(messages).toContain("rows with unregistered type vibrational_analysis: 834");
    expect(messages).toContain("rows with unregistered type subscription_grant: 833");
    expect(messages).not.toContain("override missing for image_generation (registry default 25)");
  });

  it("adds the registry's missing default overrides and does not overwrite one the seed app already had", async () => {
    const added = await t.db.selectFrom("ai_action_token_overrides").select(["action_type", "token_value"]).where("action_type", "in", ["audio_generation", "transcription"]).orderBy("action_type").execute();
    expect(added).toEqual([{ action_type: "audio_generation", token_value: 1 }, { action_type: "transcription", token_value: 60 }]);
    const row = await t.db.selectFrom("ai_action_token_overrides").select("token_value").where("action_type", "=", "image_generation").executeTakeFirstOrThrow();
    expect(row.token_value).toBe(30);
  });

  it("shows dashboard totals equal to SELECT sum(tokens_used) on the raw table", async () => {
    const raw = await sql<{ tokens: number; calls: number }>`SELECT sum(tokens_used)::bigint AS tokens, count(*)::bigint AS calls FROM public.token_usage`.execute(t.db);
    const totals = (await overviewUsage(t.db, makeRange("2024-12-31", "2025-01-05", "UTC"))).totals;
    expect(totals.tokens).toBe(raw.rows[0]?.tokens);
    expect(totals.calls).toBe(raw.rows[0]?.calls);
  });

  it("migrating again is a no-op, and rolling every migration back and forward keeps every row", async () => {
    const before = await fingerprint(t.db);
    expect((await prepareDatabase(t.db)).migrations).toEqual([]);
    for (;;) {
      const rolledBack = await migrateDown(t.db);
      if (rolledBack.length === 0) break;
    }
    const seedTables = await sql<{ n: number }>`SELECT count(*)::int AS n FROM public.token_usage`.execute(t.db);
    expect(seedTables.rows[0]?.n).toBe(SEED_ROWS);
    await prepareDatabase(t.db);
    const after = await fingerprint(t.db);
    expect({ ...after, ctids: undefined }).toEqual({ ...before, ctids: undefined });
  });
});
