import { expect, test } from "@playwright/test";

/** What a user can quote from an error page, and what an operator scrapes, in Chromium. */

test("an error page names its request's id, the one the answer's X-Request-Id carries", async ({ page }) => {
  const response = await page.goto("/no-such-page");
  expect(response?.status()).toBe(404);
  const id = response?.headers()["x-request-id"] ?? "";
  expect(id).toMatch(/^[0-9a-f-]{36}$/);
  await page.waitForLoadState("networkidle");
  // Still there after hydration.
  await expect(page.getByRole("alert")).toContainText(`Reference: ${id}`);
});

test("an error page shows the id a proxy gave the request", async ({ page }) => {
  await page.setExtraHTTPHeaders({ "x-request-id": "proxy-e2e-0001" });
  const response = await page.goto("/users/00000000-0000-4000-8000-000000000000/nothing-here");
  expect(response?.headers()["x-request-id"]).toBe("proxy-e2e-0001");
  await page.waitForLoadState("networkidle");
  await expect(page.getByRole("alert")).toContainText("Reference: proxy-e2e-0001");
});

test("/metrics answers a loopback scraper with request durations by route id", async ({ page, request }) => {
  await page.goto("/login");
  const metrics = await request.get("/metrics");
  expect(metrics.status()).toBe(200);
  const text = await metrics.text();
  expect(text).toMatch(/^tokenboard_http_request_duration_seconds_count\{route="routes\/login\/route",method="GET",status="200"\} \d+$/m);
  expect(text).toMatch(/^tokenboard_rollup_queue_depth \d+$/m);
  expect(text).toContain("process_resident_memory_bytes");
  const proxied = await request.get("/metrics", { headers: { "x-forwarded-for": "203.0.113.7" } });
  expect(proxied.status()).toBe(403);
});
