import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { refuseCrossSitePosts, securityHeaders } from "../../server/app";

/** The HTTP layer's guards, on a real express server over loopback. */
let base = "";
let close: () => Promise<void>;

beforeAll(async () => {
  const app = express();
  app.use(securityHeaders("production"));
  app.use(refuseCrossSitePosts);
  app.all("*", (_req, res) => res.status(200).send("handled"));
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise((resolve) => server.close(() => resolve()));
});
afterAll(async () => close());

describe("security headers", () => {
  it("sends CSP with a per-request nonce, frame-ancestors none, nosniff and a referrer policy", async () => {
    const first = await fetch(`${base}/`);
    const second = await fetch(`${base}/`);
    const csp = first.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9+/=]{20,}'/);
    expect(csp).not.toBe(second.headers.get("content-security-policy"));
    expect(first.headers.get("x-content-type-options")).toBe("nosniff");
    expect(first.headers.get("referrer-policy")).toBe("same-origin");
    expect(first.headers.get("x-frame-options")).toBe("DENY");
  });
});

describe("cross-site posts", () => {
  const post = (headers: Record<string, string>) => fetch(`${base}/overrides`, { method: "POST", headers, body: "a=1" });

  it("refuses a cookie-carrying post from another origin", async () => {
    const response = await post({ cookie: "tb_session=x", origin: "https://evil.example" });
    expect(response.status).toBe(403);
    expect(await response.text()).toContain("Cross-site request refused");
  });

  it("accepts a post from our own origin", async () => {
    const host = new URL(base).host;
    expect((await post({ cookie: "tb_session=x", origin: `http://${host}` })).status).toBe(200);
  });

  it("lets bearer-key API calls without cookies through (no ambient credentials to abuse)", async () => {
    expect((await post({ origin: "https://elsewhere.example", authorization: "Bearer k" })).status).toBe(200);
  });

  it("never blocks reads", async () => {
    expect((await fetch(`${base}/`, { headers: { cookie: "tb_session=x", origin: "https://evil.example" } })).status).toBe(200);
  });
});
