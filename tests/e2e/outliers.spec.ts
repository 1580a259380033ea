import { expect, test, type Page } from "@playwright/test";
import { loginAs, takeScreenshot, withE2eDatabase } from "./support";

function utcDate(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}
const RANGE = `from=${utcDate(-100)}&to=${utcDate(1)}&tz=UTC`;

/** The in-process job flags the demo data shortly after start; wait for it rather than race it. */
async function waitForFlags(): Promise<void> {
  await expect
    .poll(async () => withE2eDatabase(async (c) => Number((await c.query<{ n: string }>("SELECT count(*) AS n FROM tokenboard.outlier_flags WHERE rule = 'user_spike'")).rows[0]?.n)), { timeout: 60_000 })
    .toBeGreaterThan(0);
}

async function rules(page: Page): Promise<string[]> {
  const cells = page.getByTestId("outlier-list").locator("tbody tr td:nth-child(2)");
  return cells.allTextContents();
}

test.beforeAll(waitForFlags);

test("filtering outliers by rule puts it in the URL, survives a reload, and acknowledging with a note is audited", async ({ page }) => {
  await loginAs(page, "support", `/outliers?${RANGE}`);
  await expect(page.getByRole("heading", { name: "Outliers", exact: true })).toBeVisible();
  await expect(page.getByTestId("outlier-counts")).toContainText("User daily spike");

  await page.getByLabel("Rule").selectOption("user_spike");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/rule=user_spike/);
  await expect(page).toHaveURL(/from=/);
  expect(new Set(await rules(page))).toEqual(new Set(["User daily spike"]));
  await page.reload();
  expect(new Set(await rules(page))).toEqual(new Set(["User daily spike"]));

  const before = await page.getByTestId("outlier-list").locator("tbody tr").count();
  const form = page.getByTestId("outlier-list").locator("form").first();
  const id = await form.locator('input[name="id"]').inputValue();
  await page.getByLabel(`Note for flag ${id}`).fill("batch import agreed with the customer");
  await form.getByRole("button", { name: "Acknowledge" }).click();
  await expect(page.getByTestId(`ack-form-${id}`)).toHaveCount(0);
  await expect(page.getByTestId("outlier-list").locator("tbody tr")).toHaveCount(before - 1);

  const audit = await withE2eDatabase(async (c) =>
    (await c.query<{ reason: string; actor_label: string }>("SELECT reason, actor_label FROM tokenboard.audit_log WHERE action = 'outlier.acknowledge' AND target_id = $1", [id])).rows,
  );
  expect(audit).toHaveLength(1);
  expect(audit[0]?.reason).toBe("batch import agreed with the customer");

  await page.getByLabel("Status").selectOption("acknowledged");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/status=acknowledged/);
  await expect(page.getByTestId("outlier-list")).toContainText("batch import agreed with the customer");
  await page.goBack();
  await expect(page).not.toHaveURL(/status=acknowledged/);
});

test("an analyst reads outliers but gets no acknowledge form; rows and users are linked", async ({ page }) => {
  await loginAs(page, "analyst", `/outliers?${RANGE}&status=all`);
  const list = page.getByTestId("outlier-list");
  await expect(list.locator("tbody tr").first()).toBeVisible();
  await expect(list.getByRole("button", { name: "Acknowledge" })).toHaveCount(0);
  await page.getByRole("link", { name: "Unregistered type" }).click();
  await expect(page).toHaveURL(/rule=unregistered_type/);
  await list.getByRole("link", { name: "Rows →" }).first().click();
  await expect(page).toHaveURL(/\/usage\?type=/);
});

test("screenshot of the outliers page", async ({ page }) => {
  await page.setViewportSize({ width: 1500, height: 1000 });
  await loginAs(page, "admin", `/outliers?${RANGE}`);
  await expect(page.getByTestId("outlier-list").locator("tbody tr").first()).toBeVisible();
  await takeScreenshot(page, "outliers");
});
