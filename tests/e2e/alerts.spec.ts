import { createHmac, randomUUID } from "node:crypto";
import http from "node:http";
import { expect, test } from "@playwright/test";
import { LEDGER_KEY, loginAs, withE2eDatabase } from "./support";

/**
 * An admin sets a user's low-balance threshold after its preview, a ledger write crosses it, the
 * alert reaches a receiver run here (the e2e server's TOKENBOARD_ALERT_WEBHOOK_URL), the first
 * attempt fails and shows in the history, and Resend delivers it under the same id.
 */
const SECRET = "e2e-alert-secret-0123456789";
interface Hit {
  id: string;
  type: string;
  userId: string | undefined;
  signed: boolean;
  status: number;
}
const hits: Hit[] = [];
/** Users whose next alert is answered 500 (other alerts, e.g. the demo data's drift, get 200). */
const failOnce = new Set<string>();
let receiver: http.Server;

test.beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      const parsed = JSON.parse(body) as { id: string; type: string; user_id?: string };
      const signed = req.headers["x-tokenboard-signature"] === `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;
      const status = parsed.user_id && failOnce.delete(parsed.user_id) ? 500 : 200;
      hits.push({ id: parsed.id, type: parsed.type, userId: parsed.user_id, signed, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(3198, "127.0.0.1", resolve));
});

test.afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

test("an admin previews and saves a threshold, sees the failed delivery and resends it", async ({ page, request }) => {
  test.setTimeout(150_000);
  const userId = randomUUID();
  // A fresh user at 5000 tokens: above both the default and the threshold set below.
  const grant = await request.post("/api/v1/ledger", {
    headers: { authorization: `Bearer ${LEDGER_KEY}` },
    data: { user_id: userId, amount: 5_000, kind: "grant", reason: "e2e alerts", idempotency_key: `e2e-alerts-${userId}` },
  });
  expect(grant.status()).toBe(201);

  await loginAs(page, "admin", "/alerts");
  await page.goto("/alerts");
  await expect(page.getByRole("heading", { name: "Alerts" })).toBeVisible();
  await page.getByLabel("User id (empty: preview for everyone)").fill(userId);
  await page.getByLabel("Threshold (tokens)").fill("3000");
  await page.getByRole("button", { name: "Preview", exact: true }).click();
  await expect(page.getByTestId("alert-preview")).toContainText("would have sent 0 balance.low alerts");
  await page.getByLabel("Threshold (tokens)").fill("not a number");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await expect(page.getByRole("alert").filter({ hasText: "must be a whole number of tokens" })).toBeVisible();
  await page.getByLabel("Threshold (tokens)").fill("3000");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await expect(page.getByRole("status").filter({ hasText: `user ${userId} is alerted below 3000 tokens` })).toBeVisible();
  await expect(page.getByTestId("alert-thresholds")).toContainText(userId);

  // Crossing below 3000: the receiver answers the first attempt with 500.
  failOnce.add(userId);
  const deduct = await request.post("/api/v1/ledger", {
    headers: { authorization: `Bearer ${LEDGER_KEY}` },
    data: { user_id: userId, amount: 2_500, kind: "deduct", reason: "e2e alerts", idempotency_key: `e2e-alerts-deduct-${userId}` },
  });
  expect(deduct.status()).toBe(201);

  await expect.poll(() => hits.filter((h) => h.userId === userId).length, { timeout: 60_000 }).toBe(1);
  const alertId = hits.find((h) => h.userId === userId)!.id;
  const row = page.getByTestId("alert-deliveries").getByRole("row").filter({ hasText: alertId });
  await expect(async () => {
    await page.reload();
    await expect(row).toContainText("failed", { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(row).toContainText("HTTP 500");

  await row.getByRole("button", { name: `Resend alert ${alertId}` }).click();
  await expect(page.getByRole("status").filter({ hasText: "Queued again" })).toBeVisible();
  await expect.poll(() => hits.filter((h) => h.userId === userId && h.status === 200).length, { timeout: 30_000 }).toBe(1);
  await expect(async () => {
    await page.reload();
    await expect(row).toContainText("sent", { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });

  const mine = hits.filter((h) => h.userId === userId);
  expect(mine.map((h) => [h.id, h.type, h.signed, h.status])).toEqual([
    [alertId, "balance.low", true, 500],
    [alertId, "balance.low", true, 200],
  ]);
  const audited = await withE2eDatabase(async (client) => (await client.query("SELECT action FROM tokenboard.audit_log WHERE target_id = $1 OR target_id = $2 ORDER BY id", [userId, alertId])).rows as { action: string }[]);
  expect(audited.map((a) => a.action)).toEqual(expect.arrayContaining(["alerts.threshold.set", "alerts.delivery.resend"]));
});

test("an admin previews a spend rule, fixes a bad zone, saves it and mutes it", async ({ page }) => {
  await loginAs(page, "admin", "/alerts");
  await page.goto("/alerts");
  const name = `daily spend ${Date.now()}`;
  await page.getByLabel(/^Rule name/).fill(name);
  await page.getByLabel(/^Zone/).fill("Asia/Kolkata");
  await page.getByLabel("Over (tokens)").fill("1000");
  await page.getByRole("button", { name: "Preview rule" }).click();
  // The demo data has usage on most days: a low daily threshold would have fired on many of them.
  await expect(page.getByTestId("spend-preview")).toContainText(/would have sent \d+ spend\.threshold alert/);
  const previewed = Number((await page.getByTestId("spend-preview").textContent())?.match(/sent (\d+)/)?.[1]);
  expect(previewed).toBeGreaterThan(0);

  await page.getByLabel(/^Rule name/).fill(name);
  await page.getByLabel(/^Zone/).fill("Asia/Calcutta-ish");
  await page.getByLabel("Over (tokens)").fill("1000");
  await page.getByRole("button", { name: "Save rule" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "must be an IANA time zone" })).toBeVisible();
  await expect(page.getByTestId("spend-rules")).toHaveCount(0);

  await page.getByLabel(/^Rule name/).fill(name);
  await page.getByLabel(/^Zone/).fill("Asia/Kolkata");
  await page.getByLabel("Over (tokens)").fill("1000");
  await page.getByRole("button", { name: "Save rule" }).click();
  await expect(page.getByRole("status").filter({ hasText: `Saved the spend rule “${name}”` })).toBeVisible();
  const rule = page.getByTestId("spend-rules").getByRole("listitem").filter({ hasText: name });
  await expect(rule).toContainText("over 1000 tokens per day in Asia/Kolkata, total");
  await rule.getByRole("button", { name: "Mute 24 h" }).click();
  await expect(rule.getByText(/muted until/)).toBeVisible();
  await rule.getByRole("button", { name: `Delete rule ${name}` }).click();
  await expect(page.getByRole("status").filter({ hasText: "Deleted the rule." })).toBeVisible();
});
