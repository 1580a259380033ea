import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliverDueAlerts } from "../../app/features/alerts/outbox.server";
import { deliverMonthlyReports } from "../../app/features/alerts/reports.server";
import { forgetEnv } from "../../app/lib/env.server";
import { loader as reportLoader } from "../../app/routes/alerts.report/route";
import { requestAs, staffSession } from "../support/staff";
import { createTestDatabase, type TestDatabase } from "../support/test-db";
import { TEST_USERS } from "../support/usage-rows";

/** The monthly report: sent once per subscription after the month closes in its zone, CSV attached by email and kept as delivered. */
let t: TestDatabase;
const mails: string[] = [];
let smtp: SMTPServer;

beforeAll(async () => {
  t = await createTestDatabase();
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push(Buffer.concat(chunks).toString("utf8"));
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
  process.env.TOKENBOARD_SMTP_URL = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
  process.env.TOKENBOARD_ALERT_EMAIL_TO = "owner@example.com";
  process.env.TOKENBOARD_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/hook";
  forgetEnv();
});

afterAll(async () => {
  for (const name of ["TOKENBOARD_SMTP_URL", "TOKENBOARD_ALERT_EMAIL_TO", "TOKENBOARD_ALERT_WEBHOOK_URL"]) delete process.env[name];
  forgetEnv();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await t.drop();
});

describe("monthly report subscriptions", () => {
  it("sends each zone the month that closed there, once, with the CSV attached and kept as delivered", async () => {
    const [newYork, chatham, late] = await t.db
      .insertInto("report_subscriptions")
      .values([
        { name: "ny", zone: "America/New_York", channel: "email", created_at: new Date("2026-01-05T00:00:00Z") },
        { name: "chatham", zone: "Pacific/Chatham", channel: "email", created_at: new Date("2026-01-05T00:00:00Z") },
        { name: "late", zone: "UTC", channel: "email", created_at: new Date("2026-03-01T02:00:00Z") },
      ])
      .returning("id")
      .execute();
    await t.db.insertInto("token_usage").values({ user_id: TEST_USERS[0]!, action_type: "chat_conversation", model_used: "gpt-4o", tokens_used: 1234, created_at: new Date("2026-01-20T12:00:00Z") }).execute();

    // 04:30Z on 1 March is still 28 February in New York (January is its last closed month) and already 1 March in Chatham.
    const now = new Date("2026-03-01T04:30:00Z");
    expect(await deliverMonthlyReports(t.db, t.pool, now)).toEqual({ delivered: 2 });
    expect(await deliverMonthlyReports(t.db, t.pool, now)).toEqual({ delivered: 0 });
    const reports = await t.db.selectFrom("report_deliveries").select(["id", "subscription_id", "month", "csv", "bytes", "sha256"]).execute();
    expect(Object.fromEntries(reports.map((r) => [r.subscription_id, r.month]))).toEqual({ [newYork!.id]: "2026-01", [chatham!.id]: "2026-02" });
    expect(reports.find((r) => r.subscription_id === late!.id)).toBeUndefined();
    const ny = reports.find((r) => r.subscription_id === newYork!.id)!;
    expect(ny.bytes).toBe(ny.csv.length);
    expect(ny.sha256).toBe(createHash("sha256").update(ny.csv).digest("hex"));
    expect(ny.csv.toString("utf8")).toContain("1234");

    expect(await deliverDueAlerts(t.db)).toMatchObject({ sent: 2 });
    const nyMail = mails.find((m) => m.includes("Monthly report 2026-01"))!;
    expect(nyMail).toMatch(/Content-Disposition: attachment;\s+filename=tokenboard-2026-01-America_New_York\.csv/);
    expect(nyMail).toContain(ny.sha256);

    const admin = await staffSession(t.db, "admin");
    const response = (await reportLoader({ request: requestAs(admin, `/alerts/reports/${ny.id}`), params: { reportId: ny.id }, context: {} })) as Response;
    expect(response.headers.get("content-type")).toContain("text/csv");
    const body = Buffer.from(await response.arrayBuffer());
    expect(createHash("sha256").update(body).digest("hex")).toBe(ny.sha256);
  });
});
