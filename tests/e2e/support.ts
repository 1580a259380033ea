import fs from "node:fs";
import path from "node:path";
import { expect, type Page } from "@playwright/test";
import pg from "pg";
import { embeddedUrl } from "../../db/embedded";
import type { StaffRole } from "../../db/types";

export const ADMIN = { email: "admin@e2e.test", password: "e2e-admin-password" };
export const INGEST_KEY = "e2e-ingest-key-0123456789";
export const LEDGER_KEY = "e2e-ledger-key-0123456789";
const DATA_DIR = process.env.E2E_DATA_DIR ?? ".data-e2e";

/** Demo accounts of the e2e server: the admin from the environment, the others from demo-accounts.json. */
export function credentials(role: StaffRole): { email: string; password: string } {
  if (role === "admin") return ADMIN;
  const accounts = JSON.parse(fs.readFileSync(path.join(DATA_DIR, "demo-accounts.json"), "utf8")) as { role: string; email: string; password: string }[];
  const account = accounts.find((a) => a.role === role);
  if (!account) throw new Error(`no demo ${role} account in ${DATA_DIR}/demo-accounts.json`);
  return account;
}

export async function loginAs(page: Page, role: StaffRole, redirectTo = "/"): Promise<void> {
  await logIn(page, credentials(role), { redirectTo });
}

/** Logs in through the login form, on the suite's server or on another one (`baseUrl`). */
export async function logIn(page: Page, account: { email: string; password: string }, options: { baseUrl?: string; redirectTo?: string } = {}): Promise<void> {
  await page.goto(`${options.baseUrl ?? ""}/login?redirectTo=${encodeURIComponent(options.redirectTo ?? "/")}`);
  await page.getByLabel("Email").fill(account.email);
  await page.getByLabel("Password").fill(account.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).not.toHaveURL(/\/login/);
}

/** A direct connection to the e2e server's embedded database, to compare pages with SQL. */
export async function withE2eDatabase<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const pgDir = path.join(DATA_DIR, "pg");
  const lines = fs.readFileSync(path.join(pgDir, "postmaster.pid"), "utf8").split("\n");
  const client = new pg.Client({ connectionString: embeddedUrl(pgDir, Number(lines[3])), options: "-c search_path=tokenboard,public" });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function screenshotPath(name: string): string {
  return path.join("docs", "screenshots", `${name}.png`);
}

/**
 * A full-page screenshot for docs/screenshots, with the pointer parked where it opens no tooltip.
 * The page must fit its window's width: a wide table scrolls inside its card, the page does not.
 */
export async function takeScreenshot(page: Page, name: string): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `the ${name} page is ${overflow}px wider than its window`).toBeLessThanOrEqual(0);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: screenshotPath(name), fullPage: true });
}
