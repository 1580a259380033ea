import { expect, test } from "@playwright/test";
import { loginAs } from "./support";

test("an analyst reads the reconciliation of adopted balances and downloads it as CSV", async ({ page }) => {
  await loginAs(page, "analyst", "/billing/reconciliation?show=pool&sort=user&dir=asc");
  await expect(page.getByRole("heading", { name: "Billing reconciliation" })).toBeVisible();
  const rows = page.getByTestId("reconciliation-table").getByRole("row");
  // The demo's four households: each admin and its members.
  await expect(rows.filter({ hasText: "household:" }).first()).toBeVisible();
  await expect(page.getByTestId("reconciliation-table")).toContainText("pool");
  const download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Download CSV" }).click();
  const file = await download;
  expect(file.suggestedFilename()).toBe("tokenboard-billing-reconciliation-pool.csv");
});
