import fs from "node:fs";
import { expect, test } from "@playwright/test";
import { parse } from "csv-parse/sync";
import { loginAs, takeScreenshot, withE2eDatabase } from "./support";

const ZONE = "Asia/Kolkata";

/** The month before the current one: complete, and inside the demo data's 90 days. */
function previousMonth(): string {
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return d.toISOString().slice(0, 7);
}

test("an analyst picks a month and a zone, the URL holds both, and the downloaded CSV's TOTAL row equals the page's total", async ({ page }) => {
  const month = previousMonth();
  await loginAs(page, "analyst", "/reports");
  await expect(page.getByRole("heading", { name: /Monthly report/ })).toBeVisible();
  await page.getByLabel("Month", { exact: true }).fill(month);
  await page.getByLabel("Time zone", { exact: true }).fill(ZONE);
  await page.getByRole("button", { name: "Show report" }).click();
  await expect(page).toHaveURL(new RegExp(`month=${month}`));
  await expect(page).toHaveURL(/tz=Asia%2FKolkata/);
  await expect(page.getByRole("heading", { name: `Monthly report · ${month}` })).toBeVisible();

  const pageTokens = Number((await page.getByTestId("report-tokens").textContent())?.replace(/,/g, ""));
  const pageCalls = Number((await page.getByTestId("report-calls").textContent())?.replace(/,/g, ""));
  expect(pageTokens).toBeGreaterThan(0);
  const sqlTokens = await withE2eDatabase(async (client) => {
    const r = await client.query<{ tokens: string }>(
      `SELECT sum(tokens_used)::bigint AS tokens FROM public.token_usage
       WHERE (created_at AT TIME ZONE $1) >= $2::timestamp AND (created_at AT TIME ZONE $1) < $2::timestamp + interval '1 month'`,
      [ZONE, `${month}-01`],
    );
    return Number(r.rows[0]?.tokens);
  });
  expect(pageTokens).toBe(sqlTokens);

  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-csv").click()]);
  expect(download.suggestedFilename()).toBe(`tokenboard-usage-by-user-${month}-Asia_Kolkata.csv`);
  const records = parse(fs.readFileSync((await download.path()) as string, "utf8"), { columns: true }) as Record<string, string>[];
  const total = records.at(-1);
  expect(total?.user_id).toBe("TOTAL");
  expect(Number(total?.tokens_used)).toBe(pageTokens);
  expect(Number(total?.calls)).toBe(pageCalls);

  await takeScreenshot(page, "reports");
});

test("support staff cannot open reports or download them", async ({ page }) => {
  await loginAs(page, "support", "/");
  const response = await page.goto("/reports");
  expect(response?.status()).toBe(403);
  const download = await page.request.get(`/reports/export.csv?month=${previousMonth()}&tz=UTC`);
  expect(download.status()).toBe(403);
});
