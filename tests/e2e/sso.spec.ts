import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { expect, test, type Page } from "@playwright/test";
import { freePort, startEmbedded, type EmbeddedDatabase } from "../../db/embedded";
import { OIDC_CLIENT, startOidcProvider, type TestProvider } from "../support/oidc-provider";

/**
 * Single sign-on in Chromium against a real OpenID provider (oidc-provider, started here). The
 * server is one of this spec's own, on its own PostgreSQL, with SSO on and password login off,
 * so the suite's server and the other specs keep password login as they expect.
 */
const ACCOUNTS = {
  "sso-analyst": { email: "analyst-sso@e2e.test", email_verified: true, name: "SSO Analyst", tokenboard_role: "analyst" },
  "sso-nobody": { email: "nobody-sso@e2e.test", email_verified: true },
};

let dataDir: string;
let database: EmbeddedDatabase;
let provider: TestProvider;
let server: ChildProcess;
let baseUrl: string;
const serverLog: string[] = [];

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function waitForHealthy(timeoutMs: number): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (!running(server)) throw new Error(`the SSO test's server exited:\n${serverLog.join("").slice(-3000)}`);
    if (await fetch(`${baseUrl}/healthz`).then((r) => r.ok).catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the SSO test's server did not answer /healthz within ${timeoutMs} ms`);
}

test.beforeAll(async () => {
  test.setTimeout(180_000);
  // Inside the project, like the suite's own data: PostgreSQL runs as its own user, which
  // cannot enter a private mkdtemp directory.
  dataDir = path.resolve(`.data-e2e-sso-${process.pid}`);
  fs.rmSync(dataDir, { recursive: true, force: true });
  database = await startEmbedded({ dataDir: path.join(dataDir, "pg"), port: await freePort() });
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  provider = await startOidcProvider({ redirectUris: [`${baseUrl}/auth/oidc/callback`], accounts: ACCOUNTS });
  server = spawn("npx", ["tsx", "server/main.ts"], {
    env: {
      ...process.env,
      DATABASE_URL: database.url("tokenboard"),
      PORT: String(port),
      HOST: "127.0.0.1",
      TOKENBOARD_BUILD_DIR: process.env.TOKENBOARD_BUILD_DIR ?? "build",
      TOKENBOARD_JOBS: "off",
      TOKENBOARD_OIDC_ISSUER: provider.issuer,
      TOKENBOARD_OIDC_CLIENT_ID: OIDC_CLIENT.id,
      TOKENBOARD_OIDC_CLIENT_SECRET: OIDC_CLIENT.secret,
      TOKENBOARD_OIDC_ROLE_CLAIM: "tokenboard_role",
      TOKENBOARD_LOCAL_LOGIN: "off",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [server.stdout, server.stderr]) stream?.on("data", (chunk: Buffer) => serverLog.push(chunk.toString("utf8")));
  await waitForHealthy(120_000);
});

test.afterEach(() => {
  const testInfo = test.info();
  if (testInfo.status !== testInfo.expectedStatus) console.log(`[sso] the server's output:\n${serverLog.join("").slice(-6000)}`);
});

test.afterAll(async () => {
  if (server && running(server)) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  await provider?.close();
  await database?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** The provider's development login page (any password), then its consent page. */
async function signInAtProvider(page: Page, login: string): Promise<void> {
  await expect(page).toHaveURL(new RegExp(`^${provider.issuer}/interaction/`));
  await page.getByPlaceholder("Enter any login").fill(login);
  await page.getByPlaceholder("and password").fill("any password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  await page.getByRole("button", { name: "Continue" }).click();
}

test("Sign in with SSO lands on the dashboard as the role the provider's claim maps to", async ({ page }) => {
  await page.goto(`${baseUrl}/usage`);
  await expect(page).toHaveURL(/\/login\?redirectTo=%2Fusage/);
  // Password login is off on this server: only the SSO button is shown.
  await expect(page.getByLabel("Password")).toBeHidden();
  await page.getByRole("link", { name: "Sign in with SSO" }).click();
  await signInAtProvider(page, "sso-analyst");

  await expect(page).toHaveURL(`${baseUrl}/usage`);
  const sidebar = page.getByRole("navigation", { name: "Main" });
  await expect(page.locator("aside").getByText("analyst-sso@e2e.test")).toBeVisible();
  await expect(page.locator("aside").getByText("analyst", { exact: true })).toBeVisible();
  // An analyst sees reports but not the admin's pages.
  await expect(sidebar.getByRole("link", { name: "Reports" })).toBeVisible();
  await expect(sidebar.getByRole("link", { name: "Staff" })).toHaveCount(0);
});

test("an account with no mapped role is refused with a page that says why", async ({ page }) => {
  await page.goto(`${baseUrl}/login`);
  await page.getByRole("link", { name: "Sign in with SSO" }).click();
  await signInAtProvider(page, "sso-nobody");
  await expect(page).toHaveURL(new RegExp(`^${baseUrl}/auth/oidc/callback`));
  await expect(page.getByRole("alert")).toContainText("no tokenboard role is granted");
  await page.getByRole("link", { name: "Back to the login page" }).click();
  await expect(page).toHaveURL(`${baseUrl}/login`);
});
