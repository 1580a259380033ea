import { DateTime } from "luxon";
import { z } from "zod";
import { detectOutliers, summarizeDetection } from "../../app/models/outliers.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const instantSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/, "--since must be a date (YYYY-MM-DD, read as UTC) or an ISO instant")
  // Date() rolls 2026-02-30 over to March: a calendar date must read back unchanged.
  .refine((s) => DateTime.fromISO(s.slice(0, 10), { zone: "UTC" }).isValid, "--since is not a real date")
  .transform((s) => new Date(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s))
  .refine((d) => !Number.isNaN(d.getTime()), "--since is not a real instant");

const optionsSchema = z
  .object({ since: instantSchema.optional(), full: z.boolean() })
  .refine((o) => !(o.full && o.since), "--full and --since cannot be combined");

const USAGE = "usage: npm run cli -- detect-outliers [--since YYYY-MM-DD|ISO instant] [--full]";

/** Turns argv into { since?, full } or a message naming the bad option. */
export function parseDetectArgs(args: string[]): { ok: true; since?: Date; full: boolean } | { ok: false; message: string } {
  const raw: { since?: string; full: boolean } = { full: false };
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    if (arg === "--full") raw.full = true;
    else if (arg === "--since") raw.since = args[++i] ?? "";
    else if (arg.startsWith("--since=")) raw.since = arg.slice("--since=".length);
    else return { ok: false, message: `unknown option ${JSON.stringify(arg)}\n${USAGE}` };
  }
  const parsed = optionsSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, message: `${parsed.error.issues[0]?.message}\n${USAGE}` };
  return { ok: true, ...parsed.data };
}

export const command: CliCommand = {
  summary: "run outlier detection now: incremental from the watermark, or --since <date>, or --full",
  run: async (args) => {
    const options = parseDetectArgs(args);
    if (!options.ok) {
      console.error(`detect-outliers: ${options.message}`);
      return 2;
    }
    return withCliDatabase(async ({ db }) => {
      const report = await detectOutliers(db, { since: options.since, full: options.full, log: (line) => console.log(line) });
      console.log(`${summarizeDetection(report)} in ${(report.ms / 1000).toFixed(1)} s`);
      return report.skipped ? 1 : 0;
    });
  },
};
