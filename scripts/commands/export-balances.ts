/**
 * `npm run cli -- export-balances --month YYYY-MM --tz ZONE [--out FILE]`: the monthly balance
 * roll-forward per owner and TOTAL, the same CSV as the Reports page's download. With --out the
 * file appears complete or not at all (written beside it, renamed at the end).
 */
import fs from "node:fs";
import path from "node:path";
import type { Kysely } from "kysely";
import { z } from "zod";
import type { Database } from "../../db/types";
import { parseCliOptions } from "../../db/seed/cli-options";
import { calendarMonthSchema } from "../../app/domain/inputs";
import { monthPeriod, timeZoneSchema } from "../../app/domain/period";
import { rollForward, rollForwardCsv } from "../../app/features/money/roll-forward.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const optionsSchema = z.object({
  month: z.string({ required_error: "is required, as YYYY-MM" }).pipe(calendarMonthSchema),
  tz: z.string({ required_error: "is required, as an IANA zone such as Europe/Berlin" }).pipe(timeZoneSchema),
  out: z.string().min(1, "must be a file path").optional(),
});

export type ExportBalancesOptions = z.infer<typeof optionsSchema>;

const OPTION_KINDS = { month: { type: "string" }, tz: { type: "string" }, out: { type: "string" } } as const;
const USAGE = "usage: npm run cli -- export-balances --month YYYY-MM --tz <IANA zone> [--out FILE]";

/** Writes the roll-forward of one month to `out` (atomically) or to `stdout`. */
export async function writeBalancesExport(db: Kysely<Database>, options: ExportBalancesOptions, stdout: (text: string) => void = (t) => process.stdout.write(t)): Promise<void> {
  const period = monthPeriod(options.month, options.tz);
  const csv = rollForwardCsv(await rollForward(db, period));
  if (!options.out) {
    stdout(csv);
    return;
  }
  const target = path.resolve(options.out);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.tmp`);
  try {
    fs.writeFileSync(temp, csv, { flag: "wx" });
    fs.renameSync(temp, target);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  console.error(`wrote ${target} (balance roll-forward, ${period.month} in ${period.tz}${period.partial ? ", partial month" : ""})`);
}

export const command: CliCommand = {
  summary: "export-balances --month YYYY-MM --tz ZONE [--out FILE]: the monthly balance roll-forward CSV",
  run: async (args) => {
    const parsed = parseCliOptions(args, OPTION_KINDS, optionsSchema);
    if (!parsed.ok) {
      console.error(`export-balances: ${parsed.message}\n${USAGE}`);
      return 2;
    }
    return withCliDatabase(async ({ db }) => {
      await writeBalancesExport(db, parsed.data);
      return 0;
    });
  },
};
