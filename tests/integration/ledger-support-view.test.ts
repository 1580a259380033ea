import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { action, loader } from "~/routes/user/route";
import { getBalance } from "~/models/ledger.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { requestAs, staffSession, type TestStaff } from "../support/staff";

let t: TestDatabase;
let admin: TestStaff;
let support: TestStaff;
let analyst: TestStaff;
beforeAll(async () => {
  t = await createTestDatabase();
  [admin, support, analyst] = [await staffSession(t.db, "admin"), await staffSession(t.db, "support"), await staffSession(t.db, "analyst")];
});
afterAll(async () => t.drop());

type Outcome = { status?: number; init?: { status: number }; data?: { step: string; message: string | null; errors: Record<string, string>; balanceAfter?: number } };

async function submit(staff: TestStaff, userId: string, fields: Record<string, string>): Promise<Outcome> {
  const request = requestAs(staff, `/users/${userId}`, { method: "POST", body: new URLSearchParams(fields) });
  return (await action({ request, params: { userId }, context: {} }).catch((e: unknown) => e)) as Outcome;
}

const grant = (extra: Record<string, string> = {}) => ({ intent: "apply", kind: "grant", amount: "500", reason: "ticket 77", idempotency_key: randomUUID(), ...extra });

describe("support view", () => {
  it("answers 404 for an id that is not a uuid", async () => {
    const error = (await loader({ request: requestAs(support, "/users/nope"), params: { userId: "nope" }, context: {} }).catch((e: unknown) => e)) as { init: { status: number } };
    expect(error.init.status).toBe(404);
  });

  it("shows balance and ledger to support, and neither to analysts", async () => {
    const user = randomUUID();
    await submit(admin, user, grant());
    const forSupport = await loader({ request: requestAs(support, `/users/${user}`), params: { userId: user }, context: {} });
    expect(forSupport.balance).toBe(500);
    expect(forSupport.ledger?.entries).toHaveLength(1);
    expect(forSupport.canAdjust).toBe(true);
    const forAnalyst = await loader({ request: requestAs(analyst, `/users/${user}`), params: { userId: user }, context: {} });
    expect([forAnalyst.balance, forAnalyst.ledger, forAnalyst.canAdjust]).toEqual([null, null, false]);
  });

  it("confirms with the balance after before anything is written", async () => {
    const user = randomUUID();
    const review = await submit(support, user, grant({ intent: "confirm", amount: "300" }));
    expect(review.data).toMatchObject({ step: "confirm", balance: 0, balanceAfter: 300 });
    expect(await getBalance(t.db, user)).toBe(0);
  });

  it("makes one entry when the confirmation is submitted twice", async () => {
    const user = randomUUID();
    const fields = grant();
    const [a, b] = await Promise.all([submit(support, user, fields), submit(support, user, fields)]);
    expect([a.status, b.status]).toEqual([302, 302]);
    expect(await getBalance(t.db, user)).toBe(500);
    expect(await t.db.selectFrom("ledger_entries").select("id").where("user_id", "=", user).execute()).toHaveLength(1);
  });

  it("refuses support over the limit with a message to ask an admin", async () => {
    const user = randomUUID();
    const result = await submit(support, user, grant({ amount: "10001" }));
    expect(result.init?.status).toBe(403);
    expect(result.data?.message).toMatch(/at most 10,000 tokens.*Ask an admin/);
    expect(await getBalance(t.db, user)).toBe(0);
  });

  it("refuses analysts with 403", async () => {
    const result = (await submit(analyst, randomUUID(), grant())) as unknown as Response;
    expect(result.status).toBe(403);
  });

  it("requires a reason and names the field", async () => {
    const result = await submit(support, randomUUID(), grant({ reason: "" }));
    expect(result.init?.status).toBe(422);
    expect(result.data?.errors).toHaveProperty("reason");
  });

  it("lets only an admin force a deduction below zero", async () => {
    const user = randomUUID();
    const bySupport = await submit(support, user, grant({ kind: "deduct", amount: "5", force: "on" }));
    expect(bySupport.init?.status).toBe(403);
    const byAdmin = await submit(admin, user, grant({ kind: "deduct", amount: "5", force: "on", reason: "chargeback #9" }));
    expect(byAdmin.status).toBe(302);
    expect(await getBalance(t.db, user)).toBe(-5);
  });
});

describe("support view of a shared pool's member", () => {
  it("shows the pool's balance and who spent what, and a grant or deduction there adjusts the pool", async () => {
    const [owner, member] = [randomUUID(), randomUUID()];
    const h = await t.db.insertInto("households").values({ admin_user_id: owner, name: "Family", shared_tokens_enabled: true }).returning("id").executeTakeFirstOrThrow();
    await t.db.insertInto("household_members").values([
      { household_id: h.id, user_id: owner, role: "admin", status: "active", allow_shared_tokens: true },
      { household_id: h.id, user_id: member, role: "member", status: "active", allow_shared_tokens: true },
    ]).execute();
    await submit(admin, owner, grant({ amount: "1000" }));
    await t.db.insertInto("token_usage").values({ user_id: member, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 300, success: true }).execute();

    const page = await loader({ request: requestAs(support, `/users/${member}`), params: { userId: member }, context: {} });
    expect(page.balance).toBe(700);
    expect(page.pool).toMatchObject({ owner_id: owner, name: "Family" });
    expect(page.pool!.members.map((m) => [m.user_id, m.spent])).toEqual([[member, 300], [owner, 0]]);

    const review = await submit(support, member, grant({ intent: "confirm", amount: "50", kind: "deduct" }));
    expect(review.data).toMatchObject({ step: "confirm", balance: 700, balanceAfter: 650 });
    expect((await submit(support, member, grant({ amount: "200" }))).status).toBe(302);
    expect(await getBalance(t.db, owner)).toBe(900);
    expect(await t.db.selectFrom("ledger_entries").select("id").where("user_id", "=", member).execute()).toEqual([]);
    // Analysts see neither balance nor pool.
    const forAnalyst = await loader({ request: requestAs(analyst, `/users/${member}`), params: { userId: member }, context: {} });
    expect([forAnalyst.balance, forAnalyst.pool]).toEqual([null, null]);
  });
});

describe("support view of an overdrawn user", () => {
  it("confirms and applies a grant that leaves the balance still below zero", async () => {
    const user = randomUUID();
    await t.db.insertInto("token_usage").values({ user_id: user, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 5_000, success: true }).execute();
    expect(await getBalance(t.db, user)).toBe(-5_000);
    const review = await submit(support, user, grant({ intent: "confirm", amount: "1000" }));
    expect(review.data).toMatchObject({ step: "confirm", balance: -5_000, balanceAfter: -4_000 });
    expect((await submit(support, user, grant({ amount: "1000" }))).status).toBe(302);
    expect(await getBalance(t.db, user)).toBe(-4_000);
  });
});
