import fs from "node:fs";
import { sql, type Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareDatabase } from "../../db/setup";
import type { Database } from "../../db/types";
import { makeRange } from "../../app/domain/period";
import { ACTION_TYPE_NAMES } from "../../app/domain/action-types";
import { checkActionTypeDrift } from "../../app/models/action-type-sync.server";
import { costCentsSql } from "../../app/models/cost.server";
import { overviewUsage } from "../../app/routes/overview/queries.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * Adoption at scale: a seed-app database in its production shape (tests/fixtures/seed-app-schema.sql)
 * with 1,000,000 rows, some of action types the registry does not know but the seed app's
 * constraint allows. prepareDatabase must keep every row and every sum, rewrite nothing, and the
 * overview must equal raw SQL. The 5,000-row version of these checks is adopt-seed-database.test.ts.
 */
const ROWS = 1_000_000;
/** Allowed by the seed app's constraint, unknown to the registry. */
const UNKNOWN = ["vibrational_analysis", "subscription_grant", "viva_scene_generation", "north_star_reflection", "voice_profile_analysis"];
const KNOWN = ["chat_conversation", "assessment_scoring", "image_generation", "blueprint_generation", "prompt_suggestions", "transcription", "frequency_flip"];
// About 1 row in 17 is of an unknown type.
const TYPES = [...KNOWN, ...KNOWN, ...UNKNOWN.slice(0, 1)];
const START = "2025-01-01T00:00:00Z";

let t: TestDatabase;

interface TypeFingerprint {
  action_type: string;
  n: number;
  tokens: number;
  cost: string;
  digest: string;
}

/** Per action type: count, sum of tokens, sum of stored cost, md5 of every row (in id order). */
async function fingerprint(db: Kysely<Database>): Promise<{ types: TypeFingerprint[]; ctids: string }> {
  const types = await sql<TypeFingerprint>`
    SELECT action_type, count(*)::bigint AS n, COALESCE(sum(tokens_used), 0)::bigint AS tokens, COALESCE(sum(calculated_cost_cents), 0)::text AS cost,
           md5(string_agg(md5((id, user_id, action_type, model_used, tokens_used, input_tokens, output_tokens, success, error_message,
             metadata, created_at, calculated_cost_cents, reconciliation_status)::text), '' ORDER BY id)) AS digest
    FROM public.token_usage GROUP BY action_type ORDER BY action_type`.execute(db);
  // Where each row physically is: unchanged means no row was rewritten.
  const ctids = await sql<{ digest: string }>`SELECT md5(string_agg(ctid::text, ',' ORDER BY id)) AS digest FROM public.token_usage`.execute(db);
  return { types: types.rows, ctids: ctids.rows[0]?.digest ?? "" };
}

beforeAll(async () => {
  t = await createTestDatabase({ empty: true });
  // The fixture's tables first, the rows, then its keys and indexes: the same shape, loaded faster.
  const fixture = fs.readFileSync("tests/fixtures/seed-app-schema.sql", "utf8");
  const split = fixture.indexOf("ALTER TABLE ONLY");
  expect(split).toBeGreaterThan(0);
  await sql.raw(fixture.slice(0, split)).execute(t.db);
  const unknownExtra = UNKNOWN.slice(1);
  await sql`
    INSERT INTO public.token_usage (user_id, action_type, model_used, tokens_used, input_tokens, output_tokens, success, error_message,
                                    created_at, calculated_cost_cents, metadata)
    SELECT ('00000000-0000-4000-8000-' || lpad((g % 1009)::text, 12, '0'))::uuid,
           CASE WHEN g % 997 = 0 THEN (${unknownExtra}::text[])[1 + (g / 997) % ${unknownExtra.length}]
                ELSE (${TYPES}::text[])[1 + g % ${TYPES.length}] END,
           (ARRAY['gpt-4o','gpt-4o-mini','dall-e-3','whisper-1'])[1 + g % 4],
           (g * 37) % 9000, (g * 17) % 5000, (g * 20) % 4000,
           g % 53 <> 0, CASE WHEN g % 53 = 0 THEN 'timeout' END,
           ${START}::timestamptz + (g * 2 || ' seconds')::interval,
           CASE WHEN g % 3 = 0 THEN NULL ELSE ((g * 13) % 100000) / 100.0 END,
           CASE WHEN g % 10 = 0 THEN jsonb_build_object('n', g) ELSE '{}'::jsonb END
    FROM generate_series(1, ${ROWS}) AS g`.execute(t.db);
  await sql.raw(fixture.slice(split)).execute(t.db);
  await sql`INSERT INTO public.ai_action_token_overrides (action_type, token_value) VALUES ('image_generation', 30), ('vibrational_analysis', 5)`.execute(t.db);
  await sql`INSERT INTO public.ai_model_pricing (model_name, input_price_per_1m, output_price_per_1m) VALUES ('gpt-4o', 2.50, 10.00), ('gpt-4o-mini', 0.15, 0.60)`.execute(t.db);
  await sql`INSERT INTO public.ai_model_pricing (model_name, input_price_per_1m, output_price_per_1m, price_per_unit, unit_type) VALUES ('dall-e-3', 0, 0, 0.04, 'image')`.execute(t.db);
  await sql`VACUUM (ANALYZE) public.token_usage`.execute(t.db);
}, 180_000);
afterAll(async () => t?.drop());

describe("adopting a seed-app database of 1,000,000 rows with unknown action types", () => {
  let before: Awaited<ReturnType<typeof fingerprint>>;

  it("holds the rows as loaded, unknown types included", async () => {
    before = await fingerprint(t.db);
    expect(before.types.reduce((n, r) => n + r.n, 0)).toBe(ROWS);
    const present = before.types.map((r) => r.action_type);
    for (const type of UNKNOWN) {
      expect(present).toContain(type);
      expect(ACTION_TYPE_NAMES).not.toContain(type);
    }
  }, 120_000);

  it("prepareDatabase keeps every row and every per-type sum and digest, and rewrites no row", async () => {
    const started = Date.now();
    const result = await prepareDatabase(t.db);
    const ms = Date.now() - started;
    console.log(`adoption of ${ROWS.toLocaleString("en-US")} rows: prepareDatabase took ${(ms / 1000).toFixed(1)} s (initial rollup ${((result.initialRollup?.ms ?? 0) / 1000).toFixed(1)} s)`);
    expect(result.migrations.length).toBeGreaterThan(0);
    expect(result.initialRollup?.rows).toBe(ROWS);
    const after = await fingerprint(t.db);
    expect(after).toEqual(before);
  }, 180_000);

  it("keeps the unknown types writable and names each of them with its row count", async () => {
    const messages = (await checkActionTypeDrift(t.db)).items.map((i) => i.message);
    for (const type of before.types.filter((r) => UNKNOWN.includes(r.action_type))) {
      expect(messages).toContain(`rows with unregistered type ${type.action_type}: ${type.n.toLocaleString("en-US")}`);
    }
    // Inserted and rolled back: the constraint still allows them after adoption.
    await t.db.transaction().execute(async (trx) => {
      for (const type of UNKNOWN) {
        await sql`INSERT INTO public.token_usage (user_id, action_type, model_used) VALUES ('00000000-0000-4000-8000-000000000001', ${type}, 'gpt-4o')`.execute(trx);
      }
      throw new RollbackSignal();
    }).catch((error: unknown) => {
      if (!(error instanceof RollbackSignal)) throw error;
    });
  }, 60_000);

  it("shows overview totals equal to raw SQL, overall and for an unknown type", async () => {
    const range = makeRange("2024-12-31", "2025-01-31", "UTC");
    const raw = await sql<{ action_type: string | null; tokens: number; calls: number; failures: number; cost: number }>`
      SELECT u.action_type, sum(u.tokens_used)::bigint AS tokens, count(*)::bigint AS calls, count(*) FILTER (WHERE NOT u.success)::bigint AS failures,
             round(sum(${costCentsSql}), 2)::float8 AS cost
      FROM public.token_usage u LEFT JOIN ai_model_pricing p ON p.model_name = u.model_used
      WHERE u.created_at >= ${range.start} AND u.created_at < ${range.end}
      GROUP BY GROUPING SETS ((), (u.action_type))`.execute(t.db);
    const overall = raw.rows.find((r) => r.action_type === null);
    expect(overall?.calls).toBe(ROWS);
    const totals = (await overviewUsage(t.db, range)).totals;
    expect({ tokens: totals.tokens, calls: totals.calls, failures: totals.failures, cost: Math.round(totals.costCents * 100) / 100 }).toEqual({
      tokens: overall?.tokens, calls: overall?.calls, failures: overall?.failures, cost: overall?.cost,
    });
    const legacy = raw.rows.find((r) => r.action_type === "vibrational_analysis");
    const legacyTotals = (await overviewUsage(t.db, range, { actionType: "vibrational_analysis" })).totals;
    expect({ tokens: legacyTotals.tokens, calls: legacyTotals.calls }).toEqual({ tokens: legacy?.tokens, calls: legacy?.calls });
  }, 60_000);
});

class RollbackSignal extends Error {}
