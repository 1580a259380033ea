import { expect, test, type Page } from "@playwright/test";
import { credentials, loginAs, takeScreenshot, withE2eDatabase } from "./support";

async function someUser(offset: number): Promise<{ user_id: string; email: string }> {
  return withE2eDatabase(async (client) => {
    const r = await client.query<{ user_id: string; email: string }>("SELECT user_id, email FROM tokenboard.app_users WHERE email IS NOT NULL ORDER BY email OFFSET $1 LIMIT 1", [offset]);
    if (!r.rows[0]) throw new Error("demo data has no users");
    return r.rows[0];
  });
}

async function review(page: Page, amount: string, reason: string) {
  const form = page.getByTestId("adjust-form");
  await form.getByLabel("Grant").check();
  await form.getByLabel("Amount (tokens)").fill(amount);
  await form.getByLabel("Reason (required)").fill(reason);
  await form.getByRole("button", { name: "Review" }).click();
}

/** A user with open outlier flags if the detection job has found any, so the view shows them. */
async function userWithOutliers(): Promise<{ user_id: string; email: string; flags: number }> {
  const found = await withE2eDatabase(async (client) => {
    const r = await client.query<{ user_id: string; email: string; flags: string }>(
      `SELECT a.user_id, a.email, count(*) AS flags FROM tokenboard.app_users a JOIN tokenboard.outlier_flags f ON f.user_id = a.user_id AND f.status = 'open'
       WHERE a.email IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 1`,
    );
    return r.rows[0];
  });
  return found ? { ...found, flags: Number(found.flags) } : { ...(await someUser(3)), flags: 0 };
}

test("support finds a user, grants with a reason, double-clicks confirm and gets one entry", async ({ page }) => {
  const user = await userWithOutliers();
  const reason = `goodwill for ticket ${Date.now()}`;
  await loginAs(page, "support", "/users");
  await page.getByLabel("User id or email").fill(user.email.slice(0, 8));
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByTestId("user-matches").getByRole("link", { name: user.email }).click();
  await expect(page).toHaveURL(new RegExp(`/users/${user.user_id}`));
  const before = Number((await page.getByTestId("balance").textContent())?.replace(/,/g, ""));
  if (user.flags > 0) await expect(page.getByTestId("user-outliers").getByRole("row")).toHaveCount(Math.min(user.flags, 20) + 1);

  await review(page, "1234", reason);
  await expect(page.getByTestId("confirm-balance")).toContainText((before + 1234).toLocaleString("en-US"));
  await page.getByRole("button", { name: "Confirm grant" }).dblclick();
  await expect(page.getByTestId("adjusted-banner")).toBeVisible();
  await expect(page.getByTestId("balance")).toHaveText((before + 1234).toLocaleString("en-US"));
  await expect(page.getByTestId("ledger-table").getByText(reason)).toHaveCount(1);
  const entries = await withE2eDatabase(async (client) => (await client.query("SELECT id FROM tokenboard.ledger_entries WHERE user_id = $1 AND reason = $2", [user.user_id, reason])).rowCount);
  expect(entries).toBe(1);
  await takeScreenshot(page, "user");
});

test("the same confirmation submitted twice at once still makes one entry", async ({ page }) => {
  const user = await someUser(4);
  const reason = `double submit ${Date.now()}`;
  await loginAs(page, "support", `/users/${user.user_id}`);
  await review(page, "10", reason);
  await expect(page.getByTestId("confirm-form")).toBeVisible();
  // The scripted double submit must go through the app's own form handling, so wait for hydration.
  await page.waitForFunction(() => Boolean((window as unknown as { __remixRouter?: { state: { initialized: boolean } } }).__remixRouter?.state.initialized));
  await page.waitForLoadState("networkidle");
  // Two submits of the same form, as a fast double click on a slow connection would send.
  await page.getByTestId("confirm-form").evaluate((form: HTMLFormElement) => {
    form.requestSubmit();
    form.requestSubmit();
  });
  await expect(page.getByTestId("adjusted-banner")).toBeVisible();
  const entries = await withE2eDatabase(async (client) => (await client.query("SELECT id FROM tokenboard.ledger_entries WHERE user_id = $1 AND reason = $2", [user.user_id, reason])).rowCount);
  expect(entries).toBe(1);
});

test("support over the limit is refused with the message to ask an admin", async ({ page }) => {
  const user = await someUser(5);
  await loginAs(page, "support", `/users/${user.user_id}`);
  await review(page, "20000", "large refund");
  await expect(page.getByTestId("adjust-error")).toContainText("Support can adjust at most 10,000 tokens at a time. Ask an admin");
  const entries = await withE2eDatabase(async (client) => (await client.query("SELECT id FROM tokenboard.ledger_entries WHERE user_id = $1 AND reason = 'large refund'", [user.user_id])).rowCount);
  expect(entries).toBe(0);
});

test("admin edits an override after seeing the preview, the history shows it, and the audit log shows both writes", async ({ page }) => {
  const reason = `price change ${Date.now()}`;
  await loginAs(page, "admin", "/overrides");
  await page.getByRole("link", { name: "Edit override of image_generation" }).click();
  await page.getByLabel("New value (tokens per call; empty removes)").fill("30");
  await page.getByRole("button", { name: "Preview impact" }).click();
  await expect(page.getByTestId("override-preview")).toBeVisible();
  await expect(page.getByTestId("preview-diff")).toBeVisible();
  await takeScreenshot(page, "overrides");
  await page.getByLabel("Reason for the change (required)").fill(reason);
  await page.getByRole("button", { name: "Save 30 for image_generation" }).click();
  await expect(page.getByText("Override for image_generation saved.")).toBeVisible();
  await expect(page.getByTestId("override-value-image_generation")).toHaveText("30");
  const historyRow = page.getByTestId("override-history").getByRole("row").filter({ hasText: reason });
  await expect(historyRow).toContainText("25");
  await expect(historyRow).toContainText("30");
  await expect(historyRow).toContainText(credentials("admin").email);

  await page.goto("/audit?action=override.update");
  await expect(page.getByTestId("audit-table").getByRole("row").filter({ hasText: reason })).toHaveCount(1);
  await page.goto(`/audit?action=ledger.grant&actor=${encodeURIComponent(credentials("support").email)}`);
  await expect(page.getByTestId("audit-table").getByText(/goodwill for ticket/).first()).toBeVisible();
  await takeScreenshot(page, "audit");
  await page.goto("/staff");
  await expect(page.getByTestId("staff-table")).toContainText(credentials("support").email);
  await takeScreenshot(page, "staff");
});

test("support sees a pool member's shared pool, its balance and who spent what", async ({ page }) => {
  const [owner, member] = [await someUser(6), await someUser(7)];
  await withE2eDatabase(async (client) => {
    const h = await client.query<{ id: string }>("INSERT INTO public.households (admin_user_id, name, shared_tokens_enabled) VALUES ($1, 'E2E pool', true) RETURNING id", [owner.user_id]);
    await client.query(
      "INSERT INTO public.household_members (household_id, user_id, role, status, allow_shared_tokens) VALUES ($1, $2, 'admin', 'active', true), ($1, $3, 'member', 'active', true)",
      [h.rows[0]!.id, owner.user_id, member.user_id],
    );
  });
  await loginAs(page, "support", `/users/${owner.user_id}`);
  const ownerBalance = await page.getByTestId("balance").textContent();
  await page.goto(`/users/${member.user_id}`);
  await expect(page.getByText("Balance of the shared pool")).toBeVisible();
  await expect(page.getByTestId("balance")).toHaveText(ownerBalance ?? "");
  await expect(page.getByTestId("pool-summary")).toContainText(owner.user_id);
  await expect(page.getByTestId("pool-members").getByRole("row")).toHaveCount(3);
});
