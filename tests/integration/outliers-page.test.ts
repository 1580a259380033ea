import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectOutliers } from "../../app/models/outliers.server";
import { action, loader } from "../../app/routes/outliers/route";
import { requestAs, staffSession, type TestStaff } from "../support/staff";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { allowUnregisteredTypes, insertUsage, normalRows, PLANTED, plantedRows } from "./outliers-fixtures";

let t: TestDatabase;
let admin: TestStaff;
let support: TestStaff;
let analyst: TestStaff;
const RANGE = "from=2025-01-01&to=2025-03-31&tz=UTC";

beforeAll(async () => {
  t = await createTestDatabase();
  await allowUnregisteredTypes(t.db);
  await insertUsage(t.db, [...normalRows(), ...plantedRows()]);
  await detectOutliers(t.db, { full: true });
  [admin, support, analyst] = await Promise.all([staffSession(t.db, "admin"), staffSession(t.db, "support"), staffSession(t.db, "analyst")]);
});
afterAll(async () => t.drop());

type LoaderData = Awaited<ReturnType<typeof loader>>;
const load = async (staff: TestStaff, query: string) => (await loader({ request: requestAs(staff, `/outliers?${query}`), params: {}, context: {} } as never)) as LoaderData;

function acknowledge(staff: TestStaff, fields: Record<string, string>) {
  return action({ request: requestAs(staff, "/outliers", { method: "POST", body: new URLSearchParams(fields) }), params: {}, context: {} } as never);
}

async function flagId(rule: string): Promise<number> {
  return (await t.db.selectFrom("outlier_flags").select("id").where("rule", "=", rule).executeTakeFirstOrThrow()).id;
}

/** Remix's data() wraps a body and status; a plain object means 200. */
function unwrap(result: unknown): { status: number; body: Record<string, unknown> } {
  const r = result as { type?: string; data?: Record<string, unknown>; init?: { status?: number } };
  return r.type === "DataWithResponseInit" ? { status: r.init?.status ?? 200, body: r.data ?? {} } : { status: 200, body: result as Record<string, unknown> };
}

describe("/outliers page", () => {
  it("an analyst sees every open flag with counts per rule", async () => {
    const page = await load(analyst, RANGE);
    expect(page.page.total).toBe(7);
    expect(page.canAcknowledge).toBe(false);
    expect(page.counts.find((c) => c.rule === "out_of_range")).toMatchObject({ open: 2, acknowledged: 0 });
    expect(page.flags[0]?.message).toBeTruthy();
  });

  it("filters by rule, action type, route and user from the URL", async () => {
    expect((await load(admin, `${RANGE}&rule=out_of_range`)).flags.map((f) => f.rule)).toEqual(["out_of_range", "out_of_range"]);
    expect((await load(admin, `${RANGE}&type=vibrational_analysis`)).flags.map((f) => f.rule)).toEqual(["unregistered_type"]);
    expect((await load(admin, `${RANGE}&route=${encodeURIComponent(PLANTED.wrongRoute.route)}`)).flags.map((f) => f.rule)).toEqual(["unexpected_route"]);
    const spike = await load(admin, `${RANGE}&user=${PLANTED.spikeUser}`);
    expect(spike.flags.map((f) => f.rule)).toEqual(["user_spike"]);
    expect(spike.flags[0]?.usageHref).toBe(`/usage?user=${PLANTED.spikeUser}&from=${PLANTED.spikeDay}&to=${PLANTED.spikeDay}&tz=UTC`);
  });

  it("sorts and paginates on the server", async () => {
    const asc = await load(admin, `${RANGE}&sort=occurred_at&dir=asc`);
    const whens = asc.flags.map((f) => f.when);
    expect(whens).toEqual([...whens].sort());
    expect((await load(admin, `${RANGE}&page=2`)).flags).toEqual([]);
  });

  it("refuses a bad filter with a message naming the field", async () => {
    await expect(load(admin, `${RANGE}&rule=nope`)).rejects.toMatchObject({ data: { message: expect.stringContaining("rule must be one of") }, init: { status: 400 } });
    await expect(load(admin, `${RANGE}&user=123`)).rejects.toMatchObject({ data: { message: expect.stringContaining("user must be a user id") } });
  });

  it("refuses acknowledgement by an analyst, and changes nothing", async () => {
    const id = await flagId("user_spike");
    await expect(acknowledge(analyst, { intent: "acknowledge", id: String(id), note: "fine" })).rejects.toMatchObject({ status: 403 });
    const flag = await t.db.selectFrom("outlier_flags").select("status").where("id", "=", id).executeTakeFirstOrThrow();
    expect(flag.status).toBe("open");
  });

  it("refuses an empty note with a field error", async () => {
    const id = await flagId("user_spike");
    const { status, body } = unwrap(await acknowledge(support, { intent: "acknowledge", id: String(id), note: "   " }));
    expect(status).toBe(400);
    expect(body).toMatchObject({ ok: false, errors: { note: expect.stringContaining("a note is required") } });
  });

  it("acknowledges with a note in one audited change; a second acknowledgement is harmless", async () => {
    const id = await flagId("user_spike");
    const first = unwrap(await acknowledge(support, { intent: "acknowledge", id: String(id), note: "customer ran a batch import" }));
    expect(first.body).toMatchObject({ ok: true, message: "acknowledged" });
    const second = unwrap(await acknowledge(admin, { intent: "acknowledge", id: String(id), note: "again" }));
    expect(second.body).toMatchObject({ ok: true, message: "already acknowledged" });

    const flag = await t.db.selectFrom("outlier_flags").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect(flag).toMatchObject({ status: "acknowledged", acknowledged_by: support.id, ack_note: "customer ran a batch import" });
    const audit = await t.db.selectFrom("audit_log").selectAll().where("action", "=", "outlier.acknowledge").execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_id: support.id, target_type: "outlier_flag", target_id: String(id), reason: "customer ran a batch import" });

    const page = await load(admin, `${RANGE}&status=acknowledged`);
    expect(page.flags.map((f) => f.id)).toEqual([id]);
    expect(page.flags[0]).toMatchObject({ ackNote: "customer ran a batch import", ackBy: support.email });
    expect((await load(admin, RANGE)).page.total).toBe(6);
  });

  it("answers 404 for a flag that does not exist", async () => {
    const { status, body } = unwrap(await acknowledge(admin, { intent: "acknowledge", id: "999999", note: "x" }));
    expect(status).toBe(404);
    expect(body).toMatchObject({ errors: { id: "flag 999999 does not exist" } });
  });

  it("re-detection keeps an acknowledged flag acknowledged and adds nothing", async () => {
    const report = await detectOutliers(t.db, { full: true });
    expect(report.inserted).toBe(0);
    expect((await load(admin, `${RANGE}&status=acknowledged`)).flags).toHaveLength(1);
  });
});
