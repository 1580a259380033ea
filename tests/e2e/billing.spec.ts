import fs from "node:fs";
import { randomUUID } from "node:crypto";
import { expect, test } from "@playwright/test";
import { parse } from "csv-parse/sync";
import { LEDGER_KEY, loginAs, takeScreenshot, withE2eDatabase } from "./support";

const today = () => new Date().toISOString().slice(0, 10);
const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
const toNumber = (text: string | null) => Number((text ?? "").replace(/[^0-9.-]/g, ""));

/** A purchase with money, written as the adopted or charged ledger writes one: under the owner's lock, with its balance after. */
async function purchase(userId: string, tokens: number, cents: number): Promise<void> {
  await withE2eDatabase(async (client) => {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended('ledger:' || $1::uuid::text, 0))", [userId]);
    const { rows } = await client.query<{ balance: string }>("SELECT COALESCE((SELECT balance FROM tokenboard.token_balances WHERE user_id = $1), 0) AS balance", [userId]);
    const after = Number(rows[0]?.balance ?? 0) + tokens;
    await client.query(
      `INSERT INTO tokenboard.ledger_entries (user_id, kind, amount, balance_after, reason, actor_label, idempotency_key, amount_paid_cents, currency)
       VALUES ($1, 'purchase', $2, $3, 'e2e token pack', 'e2e', $4, $5, 'USD')`,
      [userId, tokens, after, `e2e-purchase-${randomUUID()}`, cents],
    );
    await client.query(
      "INSERT INTO tokenboard.token_balances (user_id, balance) VALUES ($1, $2) ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance, updated_at = now()",
      [userId, after],
    );
    await client.query("COMMIT");
  });
}

test("an admin reads the Billing page: money received, token flows, liability with its numbers, margins", async ({ page }) => {
  const buyer = randomUUID();
  await purchase(buyer, 250_000, 4_999);
  const from = daysAgo(29);
  const to = today();
  const expected = await withE2eDatabase(async (client) => {
    const r = await client.query<{ cents: string }>(
      `SELECT COALESCE(sum(amount_paid_cents), 0)::bigint AS cents FROM tokenboard.ledger_entries
       WHERE kind = 'purchase' AND COALESCE(upper(currency), 'USD') = 'USD' AND created_at >= $1::date AND created_at < $2::date + 1`,
      [from, to],
    );
    return Number(r.rows[0]?.cents);
  });
  await loginAs(page, "admin", `/billing?from=${from}&to=${to}&tz=UTC`);
  await expect(page.getByRole("heading", { name: "Billing", exact: true })).toBeVisible();
  expect(Math.round(toNumber(await page.getByTestId("kpi-money").textContent()) * 100)).toBe(expected);
  expect(expected).toBeGreaterThanOrEqual(4_999);
  await expect(page.getByTestId("money-USD")).toBeVisible();
  for (const id of ["kpi-sold", "kpi-granted", "kpi-charged", "kpi-expired", "kpi-outstanding", "kpi-cost", "kpi-margin"]) await expect(page.getByTestId(id)).toBeVisible();
  await expect(page.getByTestId("price-basis")).toContainText("Average purchase price");
  // The liability chart has its numbers beside it: one row per day of the range.
  await expect(page.getByTestId("liability-table").locator("tbody tr")).toHaveCount(30);
  await expect(page.getByRole("heading", { name: "Provider cost and margin by action type" })).toBeVisible();
  await expect(page.getByTestId("margin-by-type").locator("tbody tr").first()).toBeVisible();
  await expect(page.getByRole("link", { name: "Billing" })).toBeVisible();
  await takeScreenshot(page, "billing");
});

test("an analyst downloads the balance roll-forward from Reports: header first, identity on every row, TOTAL equal to the ledger", async ({ page }) => {
  const month = today().slice(0, 7);
  await loginAs(page, "analyst", `/reports?month=${month}&tz=UTC`);
  await expect(page.getByRole("heading", { name: /Balance roll-forward/ })).toBeVisible();
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-balances").click()]);
  expect(download.suggestedFilename()).toBe(`tokenboard-balances-${month}-UTC.csv`);
  const text = fs.readFileSync((await download.path()) as string, "utf8");
  expect(text.split("\n")[0]).toMatch(/^user_id,opening_balance,purchased,granted,charged,deducted,expired,closing_balance/);
  const records = parse(text, { columns: true }) as Record<string, string>[];
  const total = records.at(-1);
  expect(total?.user_id).toBe("TOTAL");
  for (const r of records) {
    const n = (k: string) => Number(r[k]);
    expect(n("opening_balance") + n("purchased") + n("granted") - n("charged") - n("deducted") - n("expired"), r.user_id).toBe(n("closing_balance"));
  }
  const ledgerTotal = await withE2eDatabase(async (client) => {
    const r = await client.query<{ total: string }>(
      "SELECT COALESCE(sum(amount), 0)::bigint AS total FROM tokenboard.ledger_entries WHERE created_at < ($1::date + interval '1 month')",
      [`${month}-01`],
    );
    return Number(r.rows[0]?.total);
  });
  expect(Number(total?.closing_balance)).toBe(ledgerTotal);
  await expect(page.getByTestId("roll-forward-total")).toContainText("TOTAL");
});

test("a support agent opens a user and sees the running balance, day by day", async ({ page, request }) => {
  const userId = randomUUID();
  const post = (kind: "grant" | "deduct", amount: number) =>
    request.post("/api/v1/ledger", {
      headers: { authorization: `Bearer ${LEDGER_KEY}` },
      data: { user_id: userId, amount, kind, reason: `e2e running balance ${kind}`, idempotency_key: `e2e-running-${userId}-${kind}` },
    });
  expect((await post("grant", 7_000)).status()).toBe(201);
  expect((await post("deduct", 2_500)).status()).toBe(201);
  await loginAs(page, "support", `/users/${userId}?tz=UTC`);
  await expect(page.getByRole("heading", { name: /Running balance/ })).toBeVisible();
  await expect(page.getByTestId("balance")).toHaveText("4,500");
  const todayRow = page.getByTestId("balance-history").locator("tbody tr").first();
  await expect(todayRow).toContainText(today());
  await expect(todayRow).toContainText("+7,000");
  await expect(todayRow).toContainText("-2,500");
  await expect(todayRow.locator("td").last()).toHaveText("4,500");
  await expect(page.getByRole("img", { name: "This balance at the end of each day" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Upcoming expiries" })).toBeVisible();
});

test("the screenshot of a busy demo balance", async ({ page }) => {
  // A demo user with calls and the most ledger entries, over the demo's 90 days.
  const userId = await withE2eDatabase(async (client) => {
    const r = await client.query<{ user_id: string }>(
      `SELECT l.user_id FROM tokenboard.ledger_entries l
       WHERE EXISTS (SELECT 1 FROM public.token_usage u WHERE u.user_id = l.user_id AND u.created_at > now() - interval '30 days')
       GROUP BY l.user_id ORDER BY count(DISTINCT l.kind) DESC, count(*) DESC, l.user_id LIMIT 1`,
    );
    return r.rows[0]?.user_id;
  });
  test.skip(!userId, "the demo data has no ledger entries");
  await loginAs(page, "support", `/users/${userId}?from=${daysAgo(89)}&to=${today()}&tz=UTC`);
  await expect(page.getByRole("heading", { name: /Running balance/ })).toBeVisible();
  await takeScreenshot(page, "user-balance");
});
