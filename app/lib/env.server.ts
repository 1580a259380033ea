import { z } from "zod";

const optionalSecret = z
  .string()
  .trim()
  .min(16, "must be at least 16 characters")
  .optional()
  .or(z.literal("").transform(() => undefined));

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
  TOKENBOARD_COOKIE_SECURE: z.enum(["auto", "on", "off"]).default("auto"),
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
