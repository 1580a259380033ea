/**
 * The one logger: JSON lines (pino) on stdout, level from TOKENBOARD_LOG_LEVEL. Inside an HTTP
 * request `logger` is that request's child logger, so every line carries its `reqId` without
 * the caller passing anything (server/observability.ts opens the request's scope).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import pino, { type DestinationStream, type Logger } from "pino";
import { z } from "zod";

export const logLevelSchema = z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info");

interface RequestScope {
  requestId: string;
  log: Logger;
}

interface LoggingState {
  base: Logger;
  scope: AsyncLocalStorage<RequestScope>;
}

declare global {
  // The server and the Remix build each hold a copy of this module; both must log alike and see the same request scope.
  var __tokenboardLogging: LoggingState | undefined;
}

function logLevel(): string {
  const parsed = logLevelSchema.safeParse(process.env.TOKENBOARD_LOG_LEVEL || undefined);
  if (!parsed.success) throw new Error(`invalid environment:\n  TOKENBOARD_LOG_LEVEL: must be one of ${logLevelSchema.removeDefault().options.join(", ")}`);
  return parsed.data;
}

function createLogger(destination?: DestinationStream): Logger {
  const options = {
    level: logLevel(),
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names ("error"), not numbers: read by people as often as by tools.
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options);
}

function state(): LoggingState {
  globalThis.__tokenboardLogging ??= { base: createLogger(), scope: new AsyncLocalStorage() };
  return globalThis.__tokenboardLogging;
}

/**
 * Sends every later line to `destination` (a test's capture, pino-pretty in development, stderr
 * for the CLI, whose stdout is its output). Loggers created before keep their stream.
 */
export function configureLogging(destination: DestinationStream): Logger {
  state().base = createLogger(destination);
  return state().base;
}

/** The process's logger, outside any request scope. */
export function baseLogger(): Logger {
  return state().base;
}

/** The current request's logger, else the process's; resolved at each call. */
export const logger: Logger = new Proxy({} as Logger, {
  get(_target, property) {
    const current = state().scope.getStore()?.log ?? state().base;
    const value: unknown = Reflect.get(current, property, current);
    return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(current) : value;
  },
});

/** Runs `fn` (the rest of a request's handling) with `log` as `logger`. */
export function runInRequestScope<T>(requestId: string, log: Logger, fn: () => T): T {
  return state().scope.run({ requestId, log }, fn);
}

export function currentRequestId(): string | undefined {
  return state().scope.getStore()?.requestId;
}

/** A client's or proxy's id is kept when it is plainly an id: it ends up in logs and a header. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  return typeof header === "string" && REQUEST_ID.test(header) ? header : randomUUID();
}
