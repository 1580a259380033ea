/**
 * Request ids, request logs and metrics for the HTTP layer: every request gets an id (the
 * client's X-Request-Id when well-formed), echoed in the answer and bound to every log line
 * written while it is handled; its duration is counted by route id; /metrics serves Prometheus.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServerBuild } from "@remix-run/node";
import express, { type Request, type Response } from "express";
import { pinoHttp } from "pino-http";
import { baseLogger, requestIdFrom, runInRequestScope } from "../app/lib/logger.server";
import { metrics } from "../app/lib/metrics.server";

export interface ObservabilityOptions {
  /** The build whose routes name requests in metrics and logs; a function (dev) names them "dev". */
  build: ServerBuild | (() => Promise<ServerBuild>);
  /** Bearer token that opens /metrics to callers other than loopback; unset: loopback only. */
  metricsToken?: string;
}

interface RoutePattern {
  id: string;
  pattern: RegExp;
  staticSegments: number;
}

/** A request's path for the log: no query string, and no secret that a path carries (a password reset link's token). */
export function loggablePath(url: string): string {
  const path = url.split("?")[0] ?? "";
  return path.replace(/^\/reset\/[^/]+/, "/reset/:token");
}

/**
 * The id of the route module a path goes to (the most specific pattern, as Remix ranks them
 * for tokenboard's routes), so that metrics carry the route, not the URL with its ids.
 */
export function routeMatcher(routes: ServerBuild["routes"]): (pathname: string) => string {
  const patterns: RoutePattern[] = [];
  const fullPath = (id: string | undefined): string[] => {
    const route = id ? routes[id] : undefined;
    if (!route) return [];
    return [...fullPath(route.parentId), ...(route.path ? route.path.split("/") : [])];
  };
  for (const route of Object.values(routes)) {
    if (!route || (route.path === undefined && !route.index) || route.id === "root") continue;
    const hasChildren = Object.values(routes).some((r) => r?.parentId === route.id);
    if (hasChildren && !route.index) continue;
    const segments = fullPath(route.id).filter(Boolean);
    const source = segments
      .map((s) => (s === "*" ? "/.*" : s.startsWith(":") ? (s.endsWith("?") ? "(?:/[^/]+)?" : "/[^/]+") : `/${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`))
      .join("");
    patterns.push({ id: route.id, pattern: new RegExp(`^${source}/?$`), staticSegments: segments.filter((s) => !s.startsWith(":") && s !== "*").length });
  }
  patterns.sort((a, b) => b.staticSegments - a.staticSegments);
  return (pathname) => {
    if (pathname.startsWith("/assets/")) return "static";
    // Single-fetch data requests (/users/7.data, /_root.data) are their page's route.
    const page = pathname === "/_root.data" ? "/" : pathname.replace(/\.data$/, "");
    return patterns.find((p) => p.pattern.test(page === "" ? "/" : page))?.id ?? "unmatched";
  };
}

/**
 * Sets X-Request-Id as the answer's head is written. Not with setHeader up front: the API
 * adapter writes its head as one array, which node merges with earlier setHeader calls by
 * keeping only the last of repeated names (set-cookie).
 */
function echoRequestId(res: ServerResponse, id: string): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, statusCode: number, ...rest: unknown[]) {
    const last = rest[rest.length - 1];
    if (Array.isArray(last) && (last.length === 0 || typeof last[0] === "string")) last.push("X-Request-Id", id);
    else if (!this.headersSent) this.setHeader("X-Request-Id", id);
    return (writeHead as (...args: unknown[]) => ServerResponse).call(this, statusCode, ...rest);
  } as typeof res.writeHead;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/**
 * Who may read /metrics: a direct loopback caller, or anyone with the token. A request that
 * came through a proxy (it names a forwarded client) is not loopback even when the proxy is.
 */
export function metricsAccess(req: Pick<IncomingMessage, "headers"> & { socket: { remoteAddress?: string } }, token: string | undefined): "allowed" | "no-token" | "refused" {
  const header = req.headers.authorization ?? "";
  if (token && header.startsWith("Bearer ")) {
    const digest = (value: string) => createHash("sha256").update(value).digest();
    if (timingSafeEqual(digest(header.slice(7).trim()), digest(token))) return "allowed";
  }
  const forwarded = req.headers["x-forwarded-for"] !== undefined || req.headers.forwarded !== undefined;
  if (!forwarded && LOOPBACK.test(req.socket.remoteAddress ?? "")) return "allowed";
  return token ? "no-token" : "refused";
}

async function serveMetrics(req: Request, res: Response, token: string | undefined): Promise<void> {
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("X-Content-Type-Options", "nosniff");
  const access = metricsAccess(req, token);
  if (access === "no-token") {
    res.status(401).set("WWW-Authenticate", 'Bearer realm="metrics"').type("text/plain").send("metrics: send Authorization: Bearer <TOKENBOARD_METRICS_TOKEN>\n");
    return;
  }
  if (access === "refused") {
    res.status(403).type("text/plain").send("metrics are served to loopback callers only; set TOKENBOARD_METRICS_TOKEN to allow others\n");
    return;
  }
  const { registry } = metrics();
  const body = await registry.metrics();
  res.status(200).type(registry.contentType).send(body);
}

/** Mounted first: request ids, request logs, HTTP metrics, and GET /metrics. */
export function observability(options: ObservabilityOptions): express.Router {
  const routeIdOf = typeof options.build === "function" ? () => "dev" : routeMatcher(options.build.routes);
  const routeOf = (req: IncomingMessage, res: ServerResponse): string => {
    const locals = (res as Response).locals;
    locals.routeId ??= req.url?.startsWith("/metrics") ? "metrics" : routeIdOf((req.url ?? "/").split("?")[0] ?? "/");
    return locals.routeId as string;
  };
  const httpLogger = pinoHttp({
    logger: baseLogger(),
    // Lines logged while handling carry the id only; the completion line has the request too.
    quietReqLogger: true,
    genReqId: (req) => requestIdFrom(req.headers["x-request-id"]),
    // Never headers (cookies, bearer keys) nor the query string (emails, filters) in the log.
    serializers: {
      req: (req: { method?: string; url?: string; remoteAddress?: string }) => ({ method: req.method, path: loggablePath(req.url ?? ""), remoteAddress: req.remoteAddress }),
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? "error" : "info"),
    customSuccessObject: (req, res, value: object) => ({ ...value, route: routeOf(req, res) }),
    customErrorObject: (req, res, _error, value: object) => ({ ...value, route: routeOf(req, res) }),
  });
  const { httpSeconds } = metrics();
  const router = express.Router();
  router.use((req, res, next) => {
    const stop = httpSeconds.startTimer();
    httpLogger(req, res, () => {
      const id = String(req.id);
      res.locals.requestId = id;
      echoRequestId(res, id);
      res.once("finish", () => stop({ route: routeOf(req, res), method: req.method, status: res.statusCode }));
      runInRequestScope(id, req.log, next);
    });
  });
  router.get("/metrics", (req, res, next) => {
    serveMetrics(req, res, options.metricsToken).catch(next);
  });
  return router;
}
