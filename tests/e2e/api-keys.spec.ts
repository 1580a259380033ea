import { randomUUID } from "node:crypto";
import { expect, test, type APIRequestContext } from "@playwright/test";
import { loginAs, takeScreenshot } from "./support";

/**
 * An admin makes an API key on the page, sees it once, the key ingests through the real server,
 * and once revoked on the page the very next call with it is refused.
 */
function ingest(request: APIRequestContext, key: string) {
  const event = { user_id: randomUUID(), action_type: "prompt_suggestions", model_used: "gpt-4o-mini", tokens_used: 42, created_at: new Date().toISOString(), event_id: `e2e-key-${randomUUID()}` };
  return request.post("/api/v1/usage", { headers: { authorization: `Bearer ${key}` }, data: { events: [event] } });
}

test("an admin creates a key, sees it once, it ingests; once revoked it is refused", async ({ page, request }) => {
  await loginAs(page, "admin", "/api-keys");
  await expect(page.getByRole("heading", { name: "API keys" })).toBeVisible();

  const name = `e2e ingest ${randomUUID().slice(0, 8)}`;
  await page.getByLabel("Name (who uses it)").fill(name);
  await page.getByLabel("Scope").selectOption("ingest");
  await page.getByRole("button", { name: "Create key" }).click();
  const shown = page.getByTestId("new-api-key-value");
  await expect(shown).toBeVisible();
  const key = (await shown.textContent()) ?? "";
  expect(key).toMatch(/^tb_live_[\w-]{32}$/);
  const prefix = key.slice(0, 14);

  const table = page.getByTestId("api-keys-table");
  const row = table.getByRole("row").filter({ hasText: name });
  await expect(row).toContainText(`${prefix}…`);
  await expect(row).toContainText("admin@e2e.test");
  await expect(row).toContainText("active");

  // Shown once: a fresh load of the page has the prefix only.
  await page.goto("/api-keys");
  await expect(page.getByTestId("new-api-key-value")).toHaveCount(0);
  expect(await page.content()).not.toContain(key);

  const accepted = await ingest(request, key);
  expect(accepted.status()).toBe(200);
  expect(await accepted.json()).toEqual({ accepted: 1, duplicates: 0, errors: [] });

  // Its last use shows once the page is loaded again.
  await expect(async () => {
    await page.goto("/api-keys");
    await expect(table.getByRole("row").filter({ hasText: name })).toContainText(new RegExp(`${new Date().getUTCFullYear()}-\\d\\d-\\d\\d \\d\\d:\\d\\d.*${new Date().getUTCFullYear()}-`));
  }).toPass({ timeout: 10_000 });

  page.once("dialog", (dialog) => void dialog.accept());
  await page.getByRole("button", { name: `Revoke ${prefix}…` }).click();
  await expect(page.getByRole("status").filter({ hasText: "Revoked" })).toBeVisible();
  await expect(table.getByRole("row").filter({ hasText: name })).toContainText("revoked");

  // The page as the README shows it: prefixes only, never a key.
  await page.goto("/api-keys");
  await takeScreenshot(page, "api-keys");

  const refused = await ingest(request, key);
  expect(refused.status()).toBe(401);
  expect((await refused.json()).message).toMatch(/invalid API key/);
});
