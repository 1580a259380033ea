import { isIP } from "node:net";
import { z } from "zod";

const optionalSecret = z
  .string()
  .trim()
  .min(16, "must be at least 16 characters")
  .optional()
  .or(z.literal("").transform(() => undefined));

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
  TOKENBOARD_DEMO_USERS: z.coerce.number().int().min(10).max(1_000_000).default(1_000),
  TOKENBOARD_DEMO_ROWS: z.coerce.number().int().min(100).max(100_000_000).default(300_000),
  TOKENBOARD_DEMO_DAYS: z.coerce.number().int().min(14, "must be at least 14 (the planted outliers need a baseline)").max(3650).default(90),
  TOKENBOARD_JOBS: z.enum(["on", "off"]).default("on"),
  TOKENBOARD_COOKIE_SECURE: z.enum(["auto", "on", "off"]).default("auto"),
  TOKENBOARD_TRUST_PROXY: trustProxySchema,
  /** Failed logins one client address may make per minute, across all emails. */
  TOKENBOARD_LOGIN_ADDRESS_LIMIT: z.coerce.number().int().min(1).max(100_000).default(20),
});

export type Env = z.infer<typeof envSchema>;

let cached: Env | undefined;

/** Parses the environment once; a bad variable stops the process with its name and the rule. */
export function getEnv(): Env {
  if (cached) return cached;
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid environment:\n${lines.join("\n")}`);
  }
  cached = parsed.data;
  return cached;
}
