import { expect, test } from "@playwright/test";
import { loginAs, takeScreenshot, withE2eDatabase } from "./support";

function utcDate(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}
const RANGE = `from=${utcDate(-29)}&to=${utcDate(0)}&tz=UTC`;

test("filtering the overview by action type changes the URL, survives a reload and back returns", async ({ page }) => {
  await loginAs(page, "analyst", `/?${RANGE}`);
  await expect(page.getByRole("heading", { name: "Overview", exact: true })).toBeVisible();
  const allTokens = await page.getByTestId("kpi-tokens").textContent();
  await page.getByTestId("type-filter-chat_conversation").click();
  await expect(page).toHaveURL(/type=chat_conversation/);
  await expect(page.getByRole("heading", { name: "Overview · chat_conversation" })).toBeVisible();
  const expected = await withE2eDatabase(async (client) => {
    const r = await client.query<{ tokens: string }>(
      "SELECT COALESCE(sum(tokens_used), 0)::bigint AS tokens FROM public.token_usage WHERE action_type = 'chat_conversation' AND created_at >= $1::date AND created_at < $2::date + 1",
      [utcDate(-29), utcDate(0)],
    );
    return Number(r.rows[0]?.tokens);
  });
  await expect(page.getByTestId("kpi-tokens")).toHaveText(expected.toLocaleString("en-US"));
  await page.reload();
  await expect(page.getByRole("heading", { name: "Overview · chat_conversation" })).toBeVisible();
  await expect(page.getByTestId("kpi-tokens")).toHaveText(expected.toLocaleString("en-US"));
  await page.goBack();
  await expect(page).not.toHaveURL(/type=/);
  await expect(page.getByTestId("kpi-tokens")).toHaveText(allTokens ?? "");
});

test("the drill-down from an action type's calls reaches its raw rows, page after page", async ({ page }) => {
  await loginAs(page, "analyst", `/action-types?${RANGE}`);
  const row = page.getByTestId("action-types-table").getByRole("row").filter({ hasText: "assessment_scoring" });
  await row.getByRole("link").nth(1).click();
  await expect(page).toHaveURL(/\/usage\?.*type=assessment_scoring/);
  const table = page.getByTestId("usage-table");
  await expect(table.getByRole("row").nth(1)).toContainText("assessment_scoring");
  const firstPageTop = await table.getByRole("row").nth(1).textContent();
  await page.getByRole("link", { name: "Next page" }).click();
  await expect(page).toHaveURL(/cursor=/);
  await expect(table.getByRole("row").nth(1)).not.toHaveText(firstPageTop ?? "");
  await expect(table.getByRole("row").nth(1)).toContainText("assessment_scoring");
});

const PAGES: { path: string; heading: string; shot: string }[] = [
  { path: `/?${RANGE}`, heading: "Overview", shot: "overview" },
  { path: `/action-types?${RANGE}`, heading: "Action types", shot: "action-types" },
  { path: `/action-types/assessment_scoring?${RANGE}`, heading: "Assessment scoring", shot: "action-type" },
  { path: `/routes?${RANGE}`, heading: "Routes", shot: "routes" },
  { path: `/users?${RANGE}`, heading: "Users", shot: "users" },
  { path: `/usage?${RANGE}`, heading: "Raw usage", shot: "usage" },
];

test("an analyst can read every usage analytics page", async ({ page }) => {
  await loginAs(page, "analyst", "/");
  for (const p of PAGES) {
    const response = await page.goto(p.path);
    expect(response?.status(), p.path).toBe(200);
    await expect(page.getByRole("heading", { name: p.heading, exact: true })).toBeVisible();
    await page.waitForLoadState("networkidle");
    await takeScreenshot(page, p.shot);
  }
});

test("an unknown action type shows a not-found page, and a route producing an unlisted type is flagged", async ({ page }) => {
  await loginAs(page, "analyst", "/");
  const response = await page.goto(`/action-types/not_a_type?${RANGE}`);
  expect(response?.status()).toBe(404);
  await page.goto(`/routes?${RANGE}&flagged=1`);
  await expect(page.getByTestId("routes-flagged")).not.toHaveText("0");
  await expect(page.getByTestId("routes-table").getByText("not listed for this route").first()).toBeVisible();
});

test("users can be searched by email prefix and link to the support view", async ({ page }) => {
  const email = await withE2eDatabase(async (client) => (await client.query<{ email: string }>("SELECT email FROM tokenboard.app_users WHERE email IS NOT NULL ORDER BY email LIMIT 1")).rows[0]?.email);
  // The demo always has app users with emails; a demo without them is a regression, not a skip.
  expect(email, "demo data has app_users with emails").toBeTruthy();
  await loginAs(page, "analyst", `/users?${RANGE}`);
  await page.getByLabel("User id or email").fill((email as string).slice(0, 6).toUpperCase());
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/q=/);
  await expect(page.getByTestId("user-matches").getByRole("link", { name: email as string })).toBeVisible();
  await page.getByTestId("user-matches").getByRole("link", { name: email as string }).click();
  await expect(page).toHaveURL(/\/users\/[0-9a-f-]{36}/);
});
