import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACTION_TYPE_NAMES } from "../../app/domain/action-types";
import { checkActionTypeDrift, readConstraintTypes, syncActionTypeConstraint } from "../../app/models/action-type-sync.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

const USER = "00000000-0000-4000-8000-000000000001";

async function setConstraint(types: string[]) {
  await sql.raw(`ALTER TABLE public.token_usage DROP CONSTRAINT IF EXISTS token_usage_action_type_check`).execute(t.db);
  const list = types.map((x) => `'${x}'`).join(",");
  await sql.raw(`ALTER TABLE public.token_usage ADD CONSTRAINT token_usage_action_type_check CHECK (action_type = ANY (ARRAY[${list}]))`).execute(t.db);
}

describe("action-type registry and the database", () => {
  it("a migrated database agrees with the registry", async () => {
    const report = await checkActionTypeDrift(t.db);
    expect(report.items).toEqual([]);
    expect(report.ok).toBe(true);
    expect(new Set(await readConstraintTypes(t.db))).toEqual(new Set(ACTION_TYPE_NAMES));
  });

  it("inserting a row of every registered type succeeds", async () => {
    for (const type of ACTION_TYPE_NAMES) {
      await t.db.insertInto("token_usage").values({ user_id: USER, action_type: type, model_used: "gpt-4o", tokens_used: 10 }).execute();
    }
    const count = await t.db.selectFrom("token_usage").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    expect(count.n).toBe(ACTION_TYPE_NAMES.length);
  });

  it("the database refuses a row of an unregistered type", async () => {
    await expect(
      t.db.insertInto("token_usage").values({ user_id: USER, action_type: "not_a_type", model_used: "gpt-4o" }).execute(),
    ).rejects.toThrow(/token_usage_action_type_check/);
  });

  it("a constraint that lacks frequency_flip is reported as exactly that", async () => {
    await t.db.deleteFrom("token_usage").where("action_type", "=", "frequency_flip").execute();
    await setConstraint(ACTION_TYPE_NAMES.filter((n) => n !== "frequency_flip"));
    const report = await checkActionTypeDrift(t.db);
    expect(report.ok).toBe(false);
    expect(report.items.map((i) => i.message)).toEqual(["constraint lacks frequency_flip"]);
  });

  it("migrate's sync adds the missing type and keeps types an adopted database already allows", async () => {
    await setConstraint([...ACTION_TYPE_NAMES.filter((n) => n !== "frequency_flip"), "vibrational_analysis"]);
    await t.db.insertInto("token_usage").values({ user_id: USER, action_type: "vibrational_analysis", model_used: "gpt-4o", tokens_used: 7 }).execute();
    const result = await syncActionTypeConstraint(t.db);
    expect(result.added).toEqual(["frequency_flip"]);
    expect(result.keptUnregistered).toEqual(["vibrational_analysis"]);
    const messages = (await checkActionTypeDrift(t.db)).items.map((i) => i.message);
    expect(messages).toEqual(["constraint allows unregistered type vibrational_analysis", "rows with unregistered type vibrational_analysis: 1"]);
  });

  it("reports a missing default override and an override for an unregistered type", async () => {
    await t.db.deleteFrom("ai_action_token_overrides").where("action_type", "=", "image_generation").execute();
    await t.db.insertInto("ai_action_token_overrides").values({ action_type: "legacy_thing", token_value: 3 }).execute();
    const messages = (await checkActionTypeDrift(t.db)).items.map((i) => i.message);
    expect(messages).toContain("override missing for image_generation (registry default 25)");
    expect(messages).toContain("override for unregistered type legacy_thing");
  });
});
