import { expect, test, type Browser, type Page } from "@playwright/test";
import { loginAs, logIn } from "./support";

/** A staff member of its own for each test (changing a shared demo login would break other specs). */
async function createMember(browser: Browser, role: "support" | "analyst", password: string): Promise<string> {
  const email = `e2e-${role}-${Date.now().toString(36)}@e2e.test`;
  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAs(page, "admin", "/staff");
  const form = page.locator("form").filter({ has: page.getByRole("button", { name: "Create" }) });
  await form.getByLabel("Email").fill(email);
  await form.getByLabel("Role").selectOption(role);
  await form.getByLabel("Initial password (12+ characters)").fill(password);
  await form.getByRole("button", { name: "Create" }).click();
  await expect(page.getByText(`Created ${email} (${role}).`)).toBeVisible();
  await context.close();
  return email;
}

async function tryLogin(page: Page, email: string, password: string): Promise<void> {
  await page.goto("/login");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

test("a staff member changes their password on /account: the new one logs in, the old one does not", async ({ browser, page }) => {
  const oldPassword = "initial long password";
  const newPassword = "changed long password";
  const email = await createMember(browser, "analyst", oldPassword);
  await logIn(page, { email, password: oldPassword });
  await page.getByRole("link", { name: "Your account" }).click();
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();

  // Errors show next to their field; the keyboard alone fills and submits the form.
  await page.getByLabel("Current password").fill("not my password");
  await page.getByLabel("New password", { exact: true }).fill(newPassword);
  await page.getByLabel("Repeat the new password").fill(newPassword);
  await page.keyboard.press("Enter");
  await expect(page.getByText("is not your current password")).toBeVisible();
  await expect(page.getByLabel("Current password")).toHaveAttribute("aria-invalid", "true");

  await page.getByLabel("Current password").fill(oldPassword);
  await page.getByLabel("New password", { exact: true }).fill(newPassword);
  await page.getByLabel("Repeat the new password").fill(newPassword);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByText("Password changed. Your other sessions have been logged out.")).toBeVisible();
  // This session stays.
  await page.reload();
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();
  await page.getByRole("button", { name: "Log out" }).click();

  await tryLogin(page, email, oldPassword);
  await expect(page.getByRole("alert")).toContainText("Email or password is incorrect.");
  await logIn(page, { email, password: newPassword });
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
});

test("wrong passwords throttle an account from that address; an admin unlocks it on the Staff page, then the login works", async ({ browser, page }) => {
  const password = "throttled long password";
  const email = await createMember(browser, "support", password);
  // Wrong guesses until the pair must wait at least 8 s (1, 2, 4, 8 …), waiting out shorter delays.
  for (let i = 0; ; i += 1) {
    expect(i, "the delay grows to 8 s within 20 guesses").toBeLessThan(20);
    await tryLogin(page, email, `wrong guess ${i}`);
    const message = (await page.getByRole("alert").textContent()) ?? "";
    const wait = Number(/wait (\d+) seconds? before the next one/.exec(message)?.[1] ?? 0);
    if (wait >= 8) break;
    const throttled = /Wait (\d+) seconds?/.exec(message);
    if (throttled) await page.waitForTimeout(Number(throttled[1]) * 1000);
  }
  await tryLogin(page, email, password);
  await expect(page.getByRole("alert")).toContainText("Too many failed attempts");
  await expect(page).toHaveURL(/\/login/);

  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await loginAs(admin, "admin", "/staff");
  const row = admin.getByRole("row").filter({ hasText: email });
  await expect(row.getByText("throttled")).toBeVisible();
  await admin.getByRole("button", { name: `Unlock ${email}` }).click();
  await expect(admin.getByText("Unlocked: failed logins cleared from every address.")).toBeVisible();
  await expect(row.getByText("throttled")).toHaveCount(0);
  await adminContext.close();

  await logIn(page, { email, password });
  await expect(page.getByRole("heading", { name: "Overview" })).toBeVisible();
});

test("an admin's one-time reset link sets a new password once", async ({ browser, page }) => {
  const email = await createMember(browser, "analyst", "forgotten long password");
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  await loginAs(admin, "admin", "/staff");
  await admin.getByRole("button", { name: `Reset link for ${email}` }).click();
  const link = await admin.getByTestId("reset-link").inputValue();
  expect(link).toMatch(/\/reset\/[\w-]{43}$/);
  await adminContext.close();

  await page.goto(link);
  await expect(page.getByText(`For ${email}.`, { exact: false })).toBeVisible();
  await page.getByLabel("New password", { exact: true }).fill("brand new long password");
  await page.getByLabel("Repeat the new password").fill("brand new long password");
  await page.getByRole("button", { name: "Set password" }).click();
  await expect(page.getByText("Password set. Log in with your new password.")).toBeVisible();
  await logIn(page, { email, password: "brand new long password" });
  await page.getByRole("button", { name: "Log out" }).click();
  await page.goto(link);
  await expect(page.getByRole("alert")).toContainText("This reset link is invalid, already used or expired.");
});
