import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adoptBillingOnce } from "~/models/billing-adoption.server";
import { getBalance } from "~/models/ledger.server";
import { rebuildRollups, runRollup } from "~/models/rollup.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  // The template was adopted while empty; this database starts as a seed app that never was.
  await t.db.deleteFrom("settings").where("key", "=", "billing_adoption").execute();
});
afterAll(async () => t.drop());

describe("usage charged by adoption is not charged again by the charging job", () => {
  it("rows queued before adoption are rolled up but charged once, by adoption", async () => {
    const user = randomUUID();
    const at = new Date(Date.now() - 3_600_000);
    await sql`
      INSERT INTO public.token_transactions (user_id, action_type, tokens_used, tokens_remaining, created_at, amount_paid_cents, currency)
      VALUES (${user}, 'token_pack_purchase', 10000, 0, ${new Date(at.getTime() - 60_000)}, 999, 'USD')`.execute(t.db);
    // Written through the triggers, so they sit in the rollup queue when adoption runs.
    await t.db
      .insertInto("token_usage")
      .values([
        { user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 1_200, success: true, created_at: at },
        { user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 800, success: true, created_at: at },
      ])
      .execute();
    // A rebuild of the rollups (the demo loader's last step) stages what the queued rows owe first.
    await rebuildRollups(t.db, { charge: true });
    const adopted = await adoptBillingOnce(t.db);
    expect(adopted?.usageRows).toBe(2);
    expect(await getBalance(t.db, user)).toBe(8_000);

    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, user)).toBe(8_000);
    const sum = await sql<{ s: number }>`SELECT sum(amount)::bigint AS s FROM tokenboard.ledger_entries WHERE user_id = ${user}`.execute(t.db);
    expect(sum.rows[0]?.s).toBe(8_000);

    // A row written after adoption is the job's to charge.
    await t.db.insertInto("token_usage").values({ user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 500, success: true, created_at: new Date() }).execute();
    expect(await getBalance(t.db, user)).toBe(7_500);
    await runRollup(t.db, { charge: true });
    expect(await getBalance(t.db, user)).toBe(7_500);
  });
});
