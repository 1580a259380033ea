/**
 * The HTTP layer in front of Remix: client address, security headers, cross-site post
 * refusal, static assets. Kept free of business rules; loaders and actions do auth.
 */
import { createRequestHandler } from "@remix-run/express";
import type { ActionFunction, LoaderFunction, ServerBuild } from "@remix-run/node";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import express, { type NextFunction, type Request, type Response } from "express";
import { getEnv } from "../app/lib/env.server";
import { logger } from "../app/lib/logger.server";
import { observability } from "./observability";
import type { TrustProxy } from "../app/lib/env.server";

export interface AppOptions {
  build: ServerBuild | (() => Promise<ServerBuild>);
  mode: "production" | "development";
  /** Vite's connect middleware in dev mode. */
  devMiddleware?: express.RequestHandler;
  clientDir?: string;
  /** Opens /metrics beyond loopback (default: TOKENBOARD_METRICS_TOKEN). */
  metricsToken?: string;
  /** TOKENBOARD_TRUST_PROXY: whose X-Forwarded-* headers to believe (default: nobody). */
  trustProxy?: TrustProxy;
}

/** Every answer's security headers but the CSP, which pages and the API set differently. */
const BASE_SECURITY_HEADERS: [string, string][] = [
  ["X-Content-Type-Options", "nosniff"],
  ["Referrer-Policy", "same-origin"],
  ["X-Frame-Options", "DENY"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
  ["Permissions-Policy", "camera=(), microphone=(), geolocation=()"],
];

/**
 * The security headers of a JSON (or plain-text) answer: the base set with a CSP that allows
 * nothing. JSON loads no scripts, so it needs no per-request nonce; the nonce's random bytes
 * were ~5% of an API call's CPU.
 */
const API_SECURITY_HEADERS: [string, string][] = [...BASE_SECURITY_HEADERS, ["Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"]];

/** One year; browsers only take it from an https answer, so plain-http setups are unaffected. */
const HSTS: [string, string] = ["Strict-Transport-Security", "max-age=31536000"];

/**
 * The answer's HSTS header when the request came over https, directly or per a trusted proxy
 * (req.secure follows the trust-proxy setting).
 */
function transportHeaders(req: Request): [string, string][] {
  // A socket the client already closed (a refused oversized body) has no TLS state to read.
  if (!req.socket) return [];
  return req.secure ? [HSTS] : [];
}

export function securityHeaders(mode: "production" | "development") {
  return (req: Request, res: Response, next: NextFunction) => {
    const nonce = randomBytes(16).toString("base64");
    res.locals.cspNonce = nonce;
    for (const [key, value] of BASE_SECURITY_HEADERS) res.setHeader(key, value);
    for (const [key, value] of transportHeaders(req)) res.setHeader(key, value);
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
  // This check runs before the page middleware (the API router sits between them): the refusal
  // brings its own security headers.
  for (const [key, value] of [...API_SECURITY_HEADERS, ...transportHeaders(req)]) res.setHeader(key, value);
  res.status(403).type("text/plain").send("Cross-site request refused: submit the form from tokenboard itself.");
}

type RouteFunction = LoaderFunction | ActionFunction;

const BUFFERED_BODY_BYTES = 64 * 1024;

/**
 * A body of declared length (Node's parser holds the client to it) read whole, with the stream's
 * events (its async iterator cost ~12 µs a request).
 */
function readSmallBody(req: Request): Promise<ArrayBuffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("error", reject);
    req.once("end", () => {
      const body = Buffer.concat(chunks);
      // Its own ArrayBuffer (small Buffers share Node's pool), copied once natively.
      resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer);
    });
  });
}

const CLIENT_IP_HEADER = "x-tokenboard-client-ip";

/**
 * The request's headers as the pairs a Fetch Request takes, from Node's raw list ([name, value,
 * …]); our client-address header is the one the first middleware set, never the client's.
 */
function headerPairs(req: Request): [string, string][] {
  const raw = req.rawHeaders;
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === CLIENT_IP_HEADER.length && name.toLowerCase() === CLIENT_IP_HEADER) continue;
    pairs.push([name, raw[i + 1] as string]);
  }
  pairs.push([CLIENT_IP_HEADER, String(req.headers[CLIENT_IP_HEADER] ?? "")]);
  return pairs;
}

/**
 * One API route module function served without Remix's request pipeline: the Fetch Request
 * Remix would build (method, headers, body, abort on disconnect), the same function, its
 * Response written as it is. What the pipeline adds per request — matching the URL against
 * every route, web streams for the body both ways — is most of the HTTP layer's CPU for a
 * small JSON call (docs/decisions/008-api-without-remix-pipeline.md). The answer is written
 * with one `writeHead` (status, security headers, the route's headers) and one `end`.
 */
function serveModuleFunction(fn: RouteFunction) {
  return async (req: Request, res: Response) => {
    const controller = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    const init: RequestInit & { duplex?: "half" } = { method: req.method, headers: headerPairs(req), signal: controller.signal };
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        // A small body of declared length is read at once (a web stream per request costs more
        // than the call it carries); anything else streams, so the route's own size limit holds.
        const length = Number(req.headers["content-length"] ?? Number.NaN);
        if (length <= BUFFERED_BODY_BYTES && !req.headers["transfer-encoding"]) init.body = await readSmallBody(req);
        else {
          init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
          init.duplex = "half";
        }
      }
      // As Remix's adapter builds it: protocol and host as the trusted proxy reports them.
      const request = new globalThis.Request(`${req.protocol}://${req.get("host") ?? "localhost"}${req.originalUrl}`, init);
      let response: unknown;
      try {
        response = await fn({ request, params: req.params, context: {} });
      } catch (thrown) {
        if (!(thrown instanceof globalThis.Response)) throw thrown;
        response = thrown;
      }
      if (!(response instanceof globalThis.Response)) throw new Error(`${req.path}: an API route must answer a Response`);
      const headers: string[] = [];
      for (const [key, value] of [...API_SECURITY_HEADERS, ...transportHeaders(req)]) headers.push(key, value);
      for (const [key, value] of response.headers) {
        if (key === "set-cookie") continue;
        // As express's res.append (and so Remix's adapter) wrote it.
        headers.push(key, key === "content-type" && value === "application/json" ? "application/json; charset=utf-8" : value);
      }
      for (const cookie of response.headers.getSetCookie()) headers.push("set-cookie", cookie);
      const type = response.headers.get("content-type") ?? "";
      if (response.body && type.startsWith("text/csv")) {
        // A download streams at the pace the client reads: Remix's writer ignores backpressure and
        // would buffer a whole export for a client that stopped reading.
        res.writeHead(response.status, headers);
        await pipeline(Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>), res).catch(() => res.destroy());
        return;
      }
      // Text goes out with the head in one write; anything else as bytes.
      const body = /^(application\/json|text\/)/.test(type) ? await response.text() : Buffer.from(await response.arrayBuffer());
      res.writeHead(response.status, headers);
      res.end(body);
    } catch (error) {
      // The route functions answer their own errors (apiFailure); this is the adapter's.
      logger.error({ err: error }, "api adapter error");
      if (!res.headersSent) {
        for (const [key, value] of API_SECURITY_HEADERS) res.setHeader(key, value);
        res.status(500).type("application/json").end(JSON.stringify({ error: "internal error" }));
      }
      else res.destroy();
    }
  };
}

/** CSV downloads served like the API, so that they stream with the socket's backpressure. */
const DOWNLOAD_PATHS = new Set(["reports/export.csv", "reports/raw.csv"]);

/**
 * The API (`/api/v1/*` and `/api/otlp/*` route modules of a production build) and the CSV
 * downloads: GET to the module's loader, other methods but HEAD to its action. Anything a module
 * does not handle falls through to Remix, which answers it as before. Mounted before the page
 * middleware (security headers with a nonce, static files): its answers carry API_SECURITY_HEADERS.
 */
export function apiRouter(build: Pick<ServerBuild, "routes">): express.Router {
  const router = express.Router();
  for (const route of Object.values(build.routes)) {
    if (!route?.path || !(route.path.startsWith("api/v1/") || route.path.startsWith("api/otlp/") || DOWNLOAD_PATHS.has(route.path))) continue;
    const serveLoader = route.module.loader && serveModuleFunction(route.module.loader);
    const serveAction = route.module.action && serveModuleFunction(route.module.action);
    router.all(`/${route.path}`, (req, res, next) => {
      const serve = req.method === "GET" ? serveLoader : req.method === "HEAD" ? undefined : serveAction;
      if (!serve) return next();
      void serve(req, res);
    });
  }
  return router;
}

/**
 * Sets whose X-Forwarded-* to believe, then passes the client address on in our own header
 * (anything a client sends under that name is replaced): req.ip is the socket's address, or
 * the one a trusted proxy reports. Throttling, audit and sessions read it (clientIp).
 */
export function applyProxyTrust(app: express.Express, trustProxy: TrustProxy): void {
  app.set("trust proxy", trustProxy);
  app.use((req, _res, next) => {
    req.headers[CLIENT_IP_HEADER] = req.ip ?? req.socket.remoteAddress ?? "";
    next();
  });
}

export function createApp(options: AppOptions): express.Express {
  const app = express();
  // First: request id, request log, HTTP metrics, /metrics (server/observability.ts).
  app.use(observability({ build: options.build, metricsToken: options.metricsToken ?? getEnv().TOKENBOARD_METRICS_TOKEN }));
  app.disable("x-powered-by");
  applyProxyTrust(app, options.trustProxy ?? false);
  app.use(refuseCrossSitePosts);
  // In production the API's route functions are called directly (same code, same answers).
  if (typeof options.build !== "function") app.use(apiRouter(options.build));
  app.use(securityHeaders(options.mode));
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
      getLoadContext: (_req, res) => ({ cspNonce: res.locals.cspNonce as string, requestId: res.locals.requestId as string }),
    }),
  );
  return app;
}
