import { defineConfig } from "@playwright/test";

const PORT = Number(process.env.E2E_PORT ?? 3100);
const DATA_DIR = process.env.E2E_DATA_DIR ?? ".data-e2e";

/**
 * End-to-end tests in Debian's Chromium (/usr/bin/chromium; Playwright's own browser
 * download cannot work on this network). The server is the real one, on a fresh embedded
 * database with a small demo data set.
 */
export default defineConfig({
  testDir: "tests/e2e",
  // Playwright empties this folder at start; keep it apart from other reports (and per run).
  outputDir: process.env.E2E_OUTPUT_DIR ?? "test-results/e2e-artifacts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"], ["json", { outputFile: "test-results/e2e.json" }]],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    },
  },
  webServer: {
    command: `rm -rf ${DATA_DIR} && npx tsx server/main.ts`,
    url: `http://127.0.0.1:${PORT}/healthz`,
    timeout: 240_000,
    reuseExistingServer: !process.env.CI,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      PORT: String(PORT),
      HOST: "127.0.0.1",
      TOKENBOARD_DATA_DIR: DATA_DIR,
      TOKENBOARD_BUILD_DIR: process.env.TOKENBOARD_BUILD_DIR ?? "build",
      TOKENBOARD_DEMO_USERS: "300",
      TOKENBOARD_DEMO_ROWS: "30000",
      TOKENBOARD_DEMO_DAYS: "90",
      TOKENBOARD_ADMIN_EMAIL: "admin@e2e.test",
      TOKENBOARD_ADMIN_PASSWORD: "e2e-admin-password",
      TOKENBOARD_INGEST_KEY: "e2e-ingest-key-0123456789",
      TOKENBOARD_LEDGER_KEY: "e2e-ledger-key-0123456789",
      TOKENBOARD_LOG_LEVEL: "warn",
      // tests/e2e/alerts.spec.ts listens here while it runs; other specs' alerts simply fail and retry.
      TOKENBOARD_ALERT_WEBHOOK_URL: "http://127.0.0.1:3198/alerts",
      TOKENBOARD_ALERT_WEBHOOK_SECRET: "e2e-alert-secret-0123456789",
    },
  },
});
