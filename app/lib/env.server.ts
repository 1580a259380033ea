import { isIP } from "node:net";
import { z } from "zod";
import { roleMapSchema } from "../features/sso/rules";
import { logLevelSchema } from "./logger.server";

const optionalSecret = z
  .string()
  .trim()
  .min(16, "must be at least 16 characters")
  .optional()
  .or(z.literal("").transform(() => undefined));

const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((value) => value || undefined);

/** Single sign-on (app/features/sso): all four of issuer, client id, secret, and a role rule, or none. */
const oidcEnvShape = {
  TOKENBOARD_OIDC_ISSUER: z
    .string()
    .trim()
    .url("must be the provider's issuer URL (https://…)")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  TOKENBOARD_OIDC_CLIENT_ID: optionalText,
  TOKENBOARD_OIDC_CLIENT_SECRET: optionalText,
  TOKENBOARD_OIDC_REDIRECT_URL: z
    .string()
    .trim()
    .url("must be the full callback URL, e.g. https://tokenboard.example.com/auth/oidc/callback")
    .refine((value) => new URL(value).pathname === "/auth/oidc/callback", "must end in /auth/oidc/callback (the route that finishes the sign-in)")
    .optional()
    .or(z.literal("").transform(() => undefined)),
  TOKENBOARD_OIDC_SCOPES: z
    .string()
    .trim()
    .default("openid email profile")
    .refine((value) => value.split(/\s+/).includes("openid"), "must include openid"),
  TOKENBOARD_OIDC_ROLE_CLAIM: optionalText,
  TOKENBOARD_OIDC_ROLE_MAP: optionalText.pipe(roleMapSchema("claim value")),
  TOKENBOARD_OIDC_DOMAIN_ROLES: optionalText.pipe(roleMapSchema("email domain")),
  TOKENBOARD_LOCAL_LOGIN: z.enum(["on", "off"]).default("on"),
};
/** Express's names for address ranges, usable in TOKENBOARD_TRUST_PROXY. */
const PROXY_PRESETS = ["loopback", "linklocal", "uniquelocal"];

function isProxyAddress(entry: string): boolean {
  if (PROXY_PRESETS.includes(entry)) return true;
  const [address = "", bits, ...rest] = entry.split("/");
  const family = isIP(address);
  if (!family || rest.length) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * TOKENBOARD_TRUST_PROXY: whom to believe about X-Forwarded-For/-Proto/-Host. "off" (default):
 * nobody, the socket is the client. A number: that many proxies in front. Otherwise a comma list
 * of proxy addresses, CIDR ranges or loopback/linklocal/uniquelocal. Express's "trust proxy".
 */
export const trustProxySchema = z
  .string()
  .trim()
  .default("off")
  .transform((value, ctx): false | number | string[] => {
    if (value === "" || value === "off") return false;
    if (/^\d+$/.test(value)) {
      const hops = Number(value);
      if (hops >= 1 && hops <= 10) return hops;
    } else {
      const entries = value.split(",").map((e) => e.trim()).filter(Boolean);
      if (entries.length && entries.every(isProxyAddress)) return entries;
    }
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: "must be off, a hop count 1-10, or a comma list of proxy addresses/CIDR ranges (or loopback, linklocal, uniquelocal)" });
    return z.NEVER;
  });

export type TrustProxy = z.output<typeof trustProxySchema>;

/** Parses one TOKENBOARD_TRUST_PROXY value; a bad one throws naming the variable. */
export function trustProxySetting(value: string | undefined): TrustProxy {
  const parsed = trustProxySchema.safeParse(value);
  if (!parsed.success) throw new Error(`invalid environment:\n  TOKENBOARD_TRUST_PROXY: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

const optionalUrl = (message: string) => z.string().trim().url(message).optional().or(z.literal("").transform(() => undefined));

/** Alerts (app/features/alerts): the default channels and the balance threshold. */
const alertEnvShape = {
  TOKENBOARD_ALERT_WEBHOOK_URL: optionalUrl("must be the receiver's http(s) URL"),
  TOKENBOARD_ALERT_WEBHOOK_SECRET: optionalSecret,
  TOKENBOARD_ALERT_SLACK_WEBHOOK_URL: optionalUrl("must be a Slack incoming-webhook URL (https://hooks.slack.com/…)"),
  TOKENBOARD_SMTP_URL: optionalUrl("must be an smtp:// or smtps:// URL"),
  TOKENBOARD_ALERT_EMAIL_FROM: z.string().trim().email("must be an email address").optional().or(z.literal("").transform(() => undefined)),
  TOKENBOARD_ALERT_EMAIL_TO: optionalText.pipe(
    z
      .string()
      .optional()
      .refine((value) => !value || value.split(",").every((part) => z.string().email().safeParse(part.trim()).success), "must be email addresses separated by commas"),
  ),
  TOKENBOARD_PUBLIC_URL: optionalUrl("must be the dashboard's base URL (https://tokenboard.example.com)"),
  TOKENBOARD_LOW_BALANCE: z.coerce.number().int().min(0).default(1000),
};

const envSchema = z.object({
  DATABASE_URL: z.string().url("must be a postgres:// URL").optional().or(z.literal("").transform(() => undefined)),
  PORT: z.coerce.number().int().min(1).max(65535).default(3000),
  HOST: z.string().default("0.0.0.0"),
  NODE_ENV: z.enum(["development", "production", "test"]).default("production"),
  TOKENBOARD_DATA_DIR: z.string().default(".data"),
  TOKENBOARD_ADMIN_EMAIL: z.string().email("must be an email address").optional().or(z.literal("").transform(() => undefined)),
  TOKENBOARD_ADMIN_PASSWORD: z.string().min(8, "must be at least 8 characters").optional().or(z.literal("").transform(() => undefined)),
  TOKENBOARD_INGEST_KEY: optionalSecret,
  TOKENBOARD_LEDGER_KEY: optionalSecret,
  TOKENBOARD_SUPPORT_ADJUST_LIMIT: z.coerce.number().int().min(0).default(10_000),
  TOKENBOARD_SUPPORT_DAILY_LIMIT: z.coerce.number().int().min(0).max(1_000_000_000_000).default(50_000),
  TOKENBOARD_DEMO_USERS: z.coerce.number().int().min(10).max(1_000_000).default(1_000),
  TOKENBOARD_DEMO_ROWS: z.coerce.number().int().min(100).max(100_000_000).default(300_000),
  TOKENBOARD_DEMO_DAYS: z.coerce.number().int().min(14, "must be at least 14 (the planted outliers need a baseline)").max(3650).default(90),
  TOKENBOARD_EXPORTS_PER_STAFF: z.coerce.number().int().min(1).max(100).default(2),
  TOKENBOARD_EXPORT_STALL_SECONDS: z.coerce.number().positive().max(3600).default(30),
  TOKENBOARD_JOBS: z.enum(["on", "off"]).default("on"),
  TOKENBOARD_LOG_LEVEL: z.preprocess((value) => value || undefined, logLevelSchema),
  TOKENBOARD_METRICS_TOKEN: optionalSecret,
  TOKENBOARD_CHARGE_USAGE: z.enum(["on", "off"], { errorMap: () => ({ message: 'must be "on" or "off"' }) }).default("on"),
  TOKENBOARD_COOKIE_SECURE: z.enum(["auto", "on", "off"]).default("auto"),
  ...oidcEnvShape,
  // API rate limits (0 = off). The per-key default stays above the ledger bench's target rate on one key.
  TOKENBOARD_API_KEY_RATE_LIMIT: z.coerce.number().int().min(0).default(50_000),
  TOKENBOARD_API_KEY_RATE_WINDOW: z.coerce.number().int().min(1, "must be at least 1 (seconds)").max(86_400).default(10),
  TOKENBOARD_API_FAILED_KEY_LIMIT: z.coerce.number().int().min(0).default(20),
  TOKENBOARD_API_FAILED_KEY_WINDOW: z.coerce.number().int().min(1, "must be at least 1 (seconds)").max(86_400).default(60),
  TOKENBOARD_TRUST_PROXY: trustProxySchema,
  /** Failed logins one client address may make per minute, across all emails. */
  TOKENBOARD_LOGIN_ADDRESS_LIMIT: z.coerce.number().int().min(1).max(100_000).default(20),
  ...alertEnvShape,
});

export type Env = z.infer<typeof envSchema>;

function checkOidcEnv(env: Env, ctx: z.RefinementCtx): void {
  const required = ["TOKENBOARD_OIDC_ISSUER", "TOKENBOARD_OIDC_CLIENT_ID", "TOKENBOARD_OIDC_CLIENT_SECRET"] as const;
  const configured = required.some((name) => env[name] !== undefined);
  if (configured) {
    for (const name of required) {
      if (env[name] === undefined) ctx.addIssue({ code: "custom", path: [name], message: "is required when single sign-on is configured (set all of TOKENBOARD_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET, or none)" });
    }
    if (!env.TOKENBOARD_OIDC_ROLE_CLAIM && !env.TOKENBOARD_OIDC_DOMAIN_ROLES) {
      ctx.addIssue({ code: "custom", path: ["TOKENBOARD_OIDC_ROLE_CLAIM"], message: "set it or TOKENBOARD_OIDC_DOMAIN_ROLES: without either no one signing in with SSO gets a role" });
    }
  }
  if (env.TOKENBOARD_OIDC_ROLE_MAP && !env.TOKENBOARD_OIDC_ROLE_CLAIM) {
    ctx.addIssue({ code: "custom", path: ["TOKENBOARD_OIDC_ROLE_MAP"], message: "needs TOKENBOARD_OIDC_ROLE_CLAIM (the claim whose values it maps)" });
  }
  if (env.TOKENBOARD_LOCAL_LOGIN === "off" && !configured) {
    ctx.addIssue({ code: "custom", path: ["TOKENBOARD_LOCAL_LOGIN"], message: "off needs single sign-on (TOKENBOARD_OIDC_ISSUER…): otherwise no one could log in" });
  }
}

let cached: Env | undefined;

/** Parses the environment once; a bad variable stops the process with its name and the rule. */
export function getEnv(): Env {
  if (cached) return cached;
  const parsed = envSchema.superRefine(checkOidcEnv).safeParse(process.env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join("\n")}`);
  }
  cached = parsed.data;
  return cached;
}

/** For tests that change process.env between cases: the next getEnv() parses it again. */
export function forgetEnv(): void {
  cached = undefined;
}
