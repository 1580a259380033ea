import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { evaluateBalanceAlerts } from "../../app/features/alerts/balance.server";
import { signature } from "../../app/features/alerts/channels.server";
import { deliverDueAlerts, enqueueAlert, resendDelivery } from "../../app/features/alerts/outbox.server";
import { forgetEnv } from "../../app/lib/env.server";
import { metrics } from "../../app/lib/metrics.server";
import { createTestDatabase, type TestDatabase } from "../support/test-db";

/**
 * Alert delivery against real receivers started here: an HTTP server that fails, hangs and then
 * recovers, a Slack-shaped endpoint, and an SMTP server (smtp-server) that receives the email.
 */
const SECRET = "alert-secret-0123456789abcdef";
let t: TestDatabase;

type Mode = "ok" | "fail" | "hang";
interface Received {
  path: string;
  body: string;
  headers: http.IncomingHttpHeaders;
  answered: number | "none";
}
const received: Received[] = [];
let modes: Mode[] = [];
let receiver: http.Server;
let receiverUrl: string;
const hanging = new Set<http.ServerResponse>();

const mails: string[] = [];
let smtp: SMTPServer;
let smtpPort: number;

beforeAll(async () => {
  t = await createTestDatabase();
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const mode = modes.shift() ?? "ok";
      const entry: Received = { path: req.url ?? "", body: Buffer.concat(chunks).toString("utf8"), headers: req.headers, answered: "none" };
      received.push(entry);
      if (mode === "hang") {
        hanging.add(res);
        return;
      }
      entry.answered = mode === "ok" ? 200 : 500;
      res.writeHead(entry.answered).end(mode === "ok" ? "ok" : "broken");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

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
  smtpPort = (smtp.server.address() as AddressInfo).port;

  process.env.TOKENBOARD_ALERT_WEBHOOK_URL = `${receiverUrl}/hook`;
  process.env.TOKENBOARD_ALERT_WEBHOOK_SECRET = SECRET;
  process.env.TOKENBOARD_PUBLIC_URL = "https://tokenboard.example.com";
  process.env.TOKENBOARD_LOW_BALANCE = "1000";
  forgetEnv();
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  await new Promise((resolve) => receiver.close(resolve));
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  for (const name of ["TOKENBOARD_ALERT_WEBHOOK_URL", "TOKENBOARD_ALERT_WEBHOOK_SECRET", "TOKENBOARD_PUBLIC_URL", "TOKENBOARD_LOW_BALANCE", "TOKENBOARD_SMTP_URL"]) delete process.env[name];
  forgetEnv();
  await t.drop();
});

beforeEach(async () => {
  received.length = 0;
  mails.length = 0;
  modes = [];
  await t.db.deleteFrom("alert_outbox").execute();
});

/** Makes every owed delivery due now, standing in for the backoff's wait. */
async function makeDue(): Promise<void> {
  await t.db.updateTable("alert_outbox").set({ next_attempt_at: new Date() }).where("status", "in", ["pending", "failed"]).execute();
}

describe("signed webhook delivery", () => {
  it("retries a receiver that fails and then hangs with the same id, until exactly one delivery succeeds", async () => {
    modes = ["fail", "hang", "ok"];
    const id = await enqueueAlert(t.db, { type: "ingest.silent", title: "Ingest silent", text: "No usage for 15 minutes", path: "/usage", details: { minutes: 15 } });
    expect(id).toBeDefined();

    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ sent: 0, failed: 1 });
    let row = await t.db.selectFrom("alert_outbox").selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: "failed", attempts: 1, last_status_code: 500, last_error: "HTTP 500" });
    // Backoff: the next attempt is about 30 s away, not immediate.
    expect(row.next_attempt_at.getTime() - Date.now()).toBeGreaterThan(20_000);
    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ sent: 0, failed: 0 });

    await makeDue();
    const started = Date.now();
    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ failed: 1 });
    expect(Date.now() - started).toBeLessThan(3_000);
    row = await t.db.selectFrom("alert_outbox").selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: "failed", attempts: 2, last_status_code: null, last_error: "timed out after 500 ms" });

    await makeDue();
    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ sent: 1 });
    await makeDue();
    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ sent: 0, failed: 0 });
    row = await t.db.selectFrom("alert_outbox").selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: "sent", attempts: 3, last_status_code: 200, last_error: null });

    expect(received).toHaveLength(3);
    expect(received.filter((r) => r.answered === 200)).toHaveLength(1);
    for (const r of received) {
      const body = JSON.parse(r.body) as Record<string, unknown>;
      expect(body).toMatchObject({ id, type: "ingest.silent", url: "https://tokenboard.example.com/usage", data: { minutes: 15 } });
      expect(typeof body.created_at).toBe("string");
      expect(r.headers["x-tokenboard-signature"]).toBe(signature(r.body, SECRET));
    }
    // The same bytes every time, so a receiver can compare or dedupe on them.
    expect(new Set(received.map((r) => r.body)).size).toBe(1);
    const counted = (await metrics().alertDeliveries.get()).values;
    expect(counted.find((v) => v.labels.channel === "webhook" && v.labels.outcome === "failed")?.value).toBeGreaterThanOrEqual(2);
    expect(counted.find((v) => v.labels.channel === "webhook" && v.labels.outcome === "sent")?.value).toBeGreaterThanOrEqual(1);
  });

  it("lets a fast receiver get its alert while another one hangs", async () => {
    modes = ["hang"];
    await enqueueAlert(t.db, { type: "drift.detected", title: "Drift", text: "x" });
    await enqueueAlert(t.db, { type: "drift.detected", title: "Drift", text: "y", channels: [{ kind: "webhook", url: `${receiverUrl}/other` }] });
    const started = Date.now();
    const run = await deliverDueAlerts(t.db, { timeoutMs: 1_000 });
    expect(run).toMatchObject({ sent: 1, failed: 1 });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("gives up as dead after the retry window, and a resend delivers it under the same id", async () => {
    modes = ["fail", "ok"];
    const id = await enqueueAlert(t.db, { type: "drift.detected", title: "Drift", text: "z" });
    await t.db.updateTable("alert_outbox").set({ dead_after: new Date(Date.now() - 1_000) }).execute();
    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ dead: 1 });
    await makeDue();
    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ sent: 0, dead: 0, failed: 0 });

    const row = await t.db.selectFrom("alert_outbox").select(["delivery_id", "status"]).executeTakeFirstOrThrow();
    expect(row.status).toBe("dead");
    expect(await resendDelivery(t.db, row.delivery_id)).toBe(true);
    expect(await deliverDueAlerts(t.db, { timeoutMs: 500 })).toMatchObject({ sent: 1 });
    expect(await resendDelivery(t.db, row.delivery_id)).toBe(false);
    expect(received.map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual([id, id]);
  });

  it("queues an event with a dedupe key once, however often it is seen", async () => {
    const first = await enqueueAlert(t.db, { type: "spend.threshold", title: "Spend", text: "over", dedupeKey: "spend:day:2026-12-07:total:1000" });
    const again = await enqueueAlert(t.db, { type: "spend.threshold", title: "Spend", text: "over", dedupeKey: "spend:day:2026-12-07:total:1000" });
    expect(first).toBeDefined();
    expect(again).toBeUndefined();
    expect(await t.db.selectFrom("alert_outbox").select("id").execute()).toHaveLength(1);
  });
});

describe("Slack and email channels", () => {
  it("posts Slack's block format with a link back to the page", async () => {
    await enqueueAlert(t.db, { type: "balance.low", userId: randomUUID(), title: "Balance below threshold", text: "5 tokens left", path: "/users/x", channels: [{ kind: "slack", url: `${receiverUrl}/slack` }] });
    expect(await deliverDueAlerts(t.db)).toMatchObject({ sent: 1 });
    const body = JSON.parse(received[0]!.body) as { text: string; blocks: { type: string; elements?: { url?: string }[] }[] };
    expect(received[0]!.path).toBe("/slack");
    expect(received[0]!.headers["x-tokenboard-signature"]).toBeUndefined();
    expect(body.text).toContain("Balance below threshold");
    expect(body.blocks[0]!.type).toBe("header");
    expect(body.blocks.find((b) => b.type === "actions")?.elements?.[0]?.url).toBe("https://tokenboard.example.com/users/x");
  });

  it("sends an email with text and HTML parts to a real SMTP server", async () => {
    process.env.TOKENBOARD_SMTP_URL = `smtp://127.0.0.1:${smtpPort}`;
    process.env.TOKENBOARD_ALERT_EMAIL_FROM = "alerts@tokenboard.example.com";
    forgetEnv();
    try {
      const id = await enqueueAlert(t.db, { type: "balance.low", title: "Balance below threshold", text: "User u has 5 tokens <left>", path: "/users/u", channels: [{ kind: "email", to: ["owner@example.com"] }] });
      expect(await deliverDueAlerts(t.db)).toMatchObject({ sent: 1 });
      expect(mails).toHaveLength(1);
      const mail = mails[0]!;
      expect(mail).toMatch(/^Subject: \[tokenboard\] Balance below threshold/m);
      expect(mail).toMatch(/^To: owner@example.com/m);
      expect(mail.toLowerCase()).toContain(`x-tokenboard-alert-id: ${id}`);
      expect(mail).toContain("Content-Type: text/plain");
      expect(mail).toContain("Content-Type: text/html");
      expect(mail).toContain("5 tokens &lt;left&gt;");
    } finally {
      delete process.env.TOKENBOARD_SMTP_URL;
      delete process.env.TOKENBOARD_ALERT_EMAIL_FROM;
      forgetEnv();
    }
  });

  it("records the SMTP failure when no server answers, and retries later", async () => {
    process.env.TOKENBOARD_SMTP_URL = "smtp://127.0.0.1:1";
    forgetEnv();
    try {
      await enqueueAlert(t.db, { type: "balance.low", title: "t", text: "x", channels: [{ kind: "email", to: ["owner@example.com"] }] });
      expect(await deliverDueAlerts(t.db, { timeoutMs: 2_000 })).toMatchObject({ failed: 1 });
      const row = await t.db.selectFrom("alert_outbox").selectAll().executeTakeFirstOrThrow();
      expect(row.status).toBe("failed");
      expect(row.last_error).toMatch(/ECONNREFUSED/);
    } finally {
      delete process.env.TOKENBOARD_SMTP_URL;
      forgetEnv();
    }
  });
});

describe("balance alerts from the ledger", () => {
  let key = 0;
  async function entry(userId: string, balanceAfter: number): Promise<void> {
    key += 1;
    await t.db
      .insertInto("ledger_entries")
      .values({ user_id: userId, kind: "usage", amount: -1, balance_after: balanceAfter, actor_label: "test", idempotency_key: `alerts-test-${key}` })
      .execute();
  }

  it("queues one alert per crossing, however many entries and runs there are", async () => {
    await evaluateBalanceAlerts(t.db); // the first run only sets the watermark
    const user = randomUUID();
    const quiet = randomUUID();
    for (const balance of [5_000, 800, 700, 600, 1_200, 1_500, 900, 100]) await entry(user, balance);
    for (const balance of [5_000, 4_000, 3_000]) await entry(quiet, balance);
    expect(await evaluateBalanceAlerts(t.db)).toMatchObject({ alerts: 3 });
    expect(await evaluateBalanceAlerts(t.db)).toMatchObject({ alerts: 0 });
    await entry(user, 50);
    expect(await evaluateBalanceAlerts(t.db)).toMatchObject({ alerts: 0 });

    const alerts = await t.db.selectFrom("alert_outbox").select(["type", "user_id", "payload"]).orderBy("delivery_id").execute();
    expect(alerts.map((a) => [a.type, a.user_id])).toEqual([
      ["balance.low", user],
      ["balance.recovered", user],
      ["balance.low", user],
    ]);
    expect(alerts[0]!.payload).toMatchObject({ path: `/users/${user}`, details: { balance: 800, threshold: 1000 } });
  });

  it("uses a user's own threshold over the default", async () => {
    const user = randomUUID();
    await t.db.insertInto("alert_balance_thresholds").values({ user_id: user, threshold: 100 }).execute();
    for (const balance of [500, 99]) await entry(user, balance);
    await evaluateBalanceAlerts(t.db);
    const alerts = await t.db.selectFrom("alert_outbox").select(["type", "payload"]).where("user_id", "=", user).execute();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.payload).toMatchObject({ details: { balance: 99, threshold: 100 } });
  });
});
