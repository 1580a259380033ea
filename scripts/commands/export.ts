/**
 * `npm run cli -- export --month YYYY-MM --tz ZONE [--out FILE] [--raw]`: the same CSV as the
 * /reports download. With --out the file appears complete or not at all (written to a temp
 * file beside it, renamed at the end); without it the CSV goes to stdout.
 */
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { monthPeriod, monthSchema, timeZoneSchema } from "../../app/domain/period";
import { openCsvExport, ReportInputError } from "../../app/models/reports.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const optionsSchema = z.object({
  month: monthSchema,
  tz: timeZoneSchema,
  out: z.string().min(1, "must be a file path").optional(),
  raw: z.boolean().default(false),
});

export type ExportOptions = z.infer<typeof optionsSchema>;

const USAGE = "usage: npm run cli -- export --month YYYY-MM --tz <IANA zone> [--out FILE] [--raw]";

/** Turns argv into an options object; unknown flags and missing values are errors by name. */
export function parseExportArgs(args: string[]): { ok: true; options: ExportOptions } | { ok: false; message: string } {
  const input: Record<string, string | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [flag, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (flag === "--raw") {
      input.raw = true;
      continue;
    }
    if (!["--month", "--tz", "--out"].includes(flag)) return { ok: false, message: `unknown option ${JSON.stringify(arg)}\n${USAGE}` };
    const value = inline ?? args[++i];
    if (value === undefined || value.startsWith("--")) return { ok: false, message: `${flag} needs a value\n${USAGE}` };
    input[flag.slice(2)] = value;
  }
  const parsed = optionsSchema.safeParse(input);
  if (parsed.success) return { ok: true, options: parsed.data };
  const issue = parsed.error.issues[0];
  const option = `--${String(issue?.path[0] ?? "month")}`;
  const message = issue?.code === "invalid_type" && issue.received === "undefined" ? "is required" : issue?.message;
  return { ok: false, message: `${option}: ${message}\n${USAGE}` };
}

async function writeExport(options: ExportOptions): Promise<number> {
  const period = monthPeriod(options.month, options.tz);
  return withCliDatabase(async ({ pool }) => {
    const csv = await openCsvExport(pool, options.raw ? "raw" : "monthly", period);
    if (!options.out) {
      await pipeline(csv, process.stdout, { end: false });
      return 0;
    }
    const target = path.resolve(options.out);
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
    try {
      await pipeline(csv, fs.createWriteStream(temp, { flags: "wx" }));
      fs.renameSync(temp, target);
    } catch (error) {
      fs.rmSync(temp, { force: true });
      throw error;
    }
    console.error(`wrote ${target} (${options.raw ? "every usage row" : "per user and action type"}, ${period.month} in ${period.tz}${period.partial ? ", partial month" : ""})`);
    return 0;
  });
}

export const command: CliCommand = {
  summary: "export --month YYYY-MM --tz ZONE [--out FILE] [--raw]: the monthly CSV (or every usage row)",
  run: async (args) => {
    const parsed = parseExportArgs(args);
    if (!parsed.ok) {
      console.error(parsed.message);
      return 2;
    }
    try {
      return await writeExport(parsed.options);
    } catch (error) {
      if (error instanceof ReportInputError) {
        console.error(`--${error.field}: ${error.message}`);
        return 2;
      }
      throw error;
    }
  },
};
