/**
 * The HTTP layer in front of Remix: client address, security headers, cross-site post
 * refusal, static assets. Kept free of business rules; loaders and actions do auth.
 */
import { createRequestHandler } from "@remix-run/express";
import type { ServerBuild } from "@remix-run/node";
import { randomBytes } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";

export interface AppOptions {
  build: ServerBuild | (() => Promise<ServerBuild>);
  mode: "production" | "development";
  /** Vite's connect middleware in dev mode. */
  devMiddleware?: express.RequestHandler;
  clientDir?: string;
}

export function securityHeaders(mode: "production" | "development") {
  return (_req: Request, res: Response, next: NextFunction) => {
    const nonce = randomBytes(16).toString("base64");
    res.locals.cspNonce = nonce;
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.setHeader("Referrer-Policy", "same-origin");
    res.setHeader("X-Frame-Options", "DENY");
    res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
    res.setHeader("Permissions-Policy", "camera=(), microphone=(), geolocation=()");
    if (mode === "production") {
      res.setHeader(
        "Content-Security-Policy",
        [
          "default-src 'self'",
          `script-src 'self' 'nonce-${nonce}'`,
          "style-src 'self' 'unsafe-inline'",
          "img-src 'self' data:",
          "font-src 'self'",
          "connect-src 'self'",
          "object-src 'none'",
          "base-uri 'self'",
          "form-action 'self'",
          "frame-ancestors 'none'",
        ].join("; "),
      );
    }
    next();
  };
}

/**
 * A state-changing request that carries a session cookie must come from our own origin.
 * SameSite=Lax already keeps the cookie off most cross-site posts; this closes the rest
 * (same-site subdomains, older browsers). Bearer-key API calls carry no cookie and pass.
 */
export function refuseCrossSitePosts(req: Request, res: Response, next: NextFunction) {
  if (req.method === "GET" || req.method === "HEAD" || req.method === "OPTIONS") return next();
  if (!req.headers.cookie) return next();
  const origin = req.headers.origin ?? req.headers.referer;
  if (!origin) return next();
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    originHost = "";
  }
  if (originHost === req.headers.host) return next();
  res.status(403).type("text/plain").send("Cross-site request refused: submit the form from tokenboard itself.");
}

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("trust proxy", false);
  app.use((req, _res, next) => {
    // Our own header for the client address; anything a client sends under this name is dropped.
    req.headers["x-tokenboard-client-ip"] = req.socket.remoteAddress ?? "";
    next();
  });
  app.use(securityHeaders(options.mode));
  app.use(refuseCrossSitePosts);
  if (options.devMiddleware) {
    app.use(options.devMiddleware);
  } else if (options.clientDir) {
    app.use("/assets", express.static(`${options.clientDir}/assets`, { immutable: true, maxAge: "1y" }));
    app.use(express.static(options.clientDir, { maxAge: "1h" }));
  }
  app.all(
    "*",
    createRequestHandler({
      build: options.build,
      mode: options.mode,
      getLoadContext: (_req, res) => ({ cspNonce: res.locals.cspNonce as string }),
    }),
  );
  return app;
}
