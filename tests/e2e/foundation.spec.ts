import { expect, test } from "@playwright/test";
import { ADMIN, loginAs, takeScreenshot, withE2eDatabase } from "./support";

function utcDate(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

test("a wrong password is refused and nothing is shown but the login form", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?redirectTo=%2F/);
  await page.getByLabel("Email").fill(ADMIN.email);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Email or password is incorrect.");
  await expect(page).toHaveURL(/\/login/);
  await page.goto("/action-types");
  await expect(page).toHaveURL(/\/login\?redirectTo=%2Faction-types/);
});

test("the demo admin logs in and the overview totals equal SELECT sum(tokens_used) for the range", async ({ page }) => {
  const from = utcDate(-29);
  const to = utcDate(0);
  await loginAs(page, "admin", `/?from=${from}&to=${to}&tz=UTC`);
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
  const expected = await withE2eDatabase(async (client) => {
    const result = await client.query<{ tokens: string; calls: string }>(
      "SELECT sum(tokens_used)::bigint AS tokens, count(*)::bigint AS calls FROM public.token_usage WHERE created_at >= $1::date AND created_at < $2::date + 1",
      [from, to],
    );
    return result.rows[0];
  });
  expect(Number(expected?.tokens)).toBeGreaterThan(0);
  await expect(page.getByTestId("kpi-tokens")).toHaveText(Number(expected?.tokens).toLocaleString("en-US"));
  await expect(page.getByTestId("kpi-calls")).toHaveText(Number(expected?.calls).toLocaleString("en-US"));
  await takeScreenshot(page, "overview");
});

test("logging out ends the session", async ({ page }) => {
  await loginAs(page, "admin");
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await page.goto("/");
  await expect(page).toHaveURL(/\/login/);
});
