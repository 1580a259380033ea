import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyProxyTrust, refuseCrossSitePosts, securityHeaders } from "../../server/app";
import { trustProxySetting } from "../../app/lib/env.server";

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

describe("behind a TLS proxy (TOKENBOARD_TRUST_PROXY)", () => {
  async function serve(trustProxy: string | undefined): Promise<{ url: string; close: () => Promise<void> }> {
    const app = express();
    applyProxyTrust(app, trustProxySetting(trustProxy));
    app.use(securityHeaders("production"));
    app.all("*", (req, res) => res.json({ ip: req.headers["x-tokenboard-client-ip"], protocol: req.protocol }));
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }
  const forwarded = { "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7" };

  it("ignores X-Forwarded-* by default: the socket's address, http, no HSTS", async () => {
    const s = await serve(undefined);
    try {
      const response = await fetch(s.url, { headers: { ...forwarded, "x-tokenboard-client-ip": "6.6.6.6" } });
      expect(await response.json()).toEqual({ ip: "127.0.0.1", protocol: "http" });
      expect(response.headers.get("strict-transport-security")).toBeNull();
    } finally {
      await s.close();
    }
  });

  it("with one trusted hop takes the proxy's client address and https, and sends HSTS", async () => {
    const s = await serve("1");
    try {
      const response = await fetch(s.url, { headers: forwarded });
      expect(await response.json()).toEqual({ ip: "203.0.113.7", protocol: "https" });
      expect(response.headers.get("strict-transport-security")).toMatch(/^max-age=\d{7,}/);
      // A plain-http request through the same proxy gets no HSTS (browsers ignore it there anyway).
      expect((await fetch(s.url)).headers.get("strict-transport-security")).toBeNull();
    } finally {
      await s.close();
    }
  });

  it("trusts only the proxy addresses listed", async () => {
    const s = await serve("10.0.0.0/8");
    try {
      // The test connects from 127.0.0.1, which is not in the list: the headers are not honoured.
      expect(await (await fetch(s.url, { headers: forwarded })).json()).toEqual({ ip: "127.0.0.1", protocol: "http" });
    } finally {
      await s.close();
    }
  });

  it("parses the setting: off, a hop count or addresses; anything else is an error naming the variable", () => {
    expect(trustProxySetting(undefined)).toBe(false);
    expect(trustProxySetting("off")).toBe(false);
    expect(trustProxySetting("2")).toBe(2);
    expect(trustProxySetting("loopback, 10.0.0.0/8 ,::1")).toEqual(["loopback", "10.0.0.0/8", "::1"]);
    expect(() => trustProxySetting("yes")).toThrow(/TOKENBOARD_TRUST_PROXY/);
    expect(() => trustProxySetting("10.0.0.0/99")).toThrow(/TOKENBOARD_TRUST_PROXY/);
  });
});
