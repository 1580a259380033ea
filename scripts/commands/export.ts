/**
 * `npm run cli -- export --month YYYY-MM --tz ZONE [--out FILE] [--raw]`: the same CSV as the
 * /reports download. With --out the file appears complete or not at all (written to a temp
 * file beside it, renamed at the end); without it the CSV goes to stdout.
 */
import fs from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { parseCliOptions } from "../../db/seed/cli-options";
import { calendarMonthSchema } from "../../app/domain/inputs";
import { monthPeriod, timeZoneSchema } from "../../app/domain/period";
import { openCsvExport, ReportInputError } from "../../app/models/reports.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const optionsSchema = z.object({
  month: z.string({ required_error: "is required, as YYYY-MM" }).pipe(calendarMonthSchema),
  tz: z.string({ required_error: "is required, as an IANA zone such as Europe/Berlin" }).pipe(timeZoneSchema),
  out: z.string().min(1, "must be a file path").optional(),
  raw: z.boolean().default(false),
});

export type ExportOptions = z.infer<typeof optionsSchema>;

const OPTION_KINDS = { month: { type: "string" }, tz: { type: "string" }, out: { type: "string" }, raw: { type: "boolean" } } as const;
const USAGE = "usage: npm run cli -- export --month YYYY-MM --tz <IANA zone> [--out FILE] [--raw]";

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
    const parsed = parseCliOptions(args, OPTION_KINDS, optionsSchema);
    if (!parsed.ok) {
      console.error(`export: ${parsed.message}\n${USAGE}`);
      return 2;
    }
    try {
      return await writeExport(parsed.data);
    } catch (error) {
      if (error instanceof ReportInputError) {
        console.error(`export: --${error.field}: ${error.message}`);
        return 2;
      }
      throw error;
    }
  },
};
