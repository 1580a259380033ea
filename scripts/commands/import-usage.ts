/**
 * `npm run cli -- import-usage <file.csv|-> [--dry-run] [--strict]` — bulk load of usage rows.
 * Exit codes: 0 every line loaded (or counted as a duplicate); 1 some lines were rejected, or
 * the file could not be imported at all; 2 bad arguments. See docs/ingest.md.
 */
import fs from "node:fs";
import type { Readable } from "node:stream";
import { z } from "zod";
import { formatInt } from "../../app/domain/format";
import { importUsageCsv, UsageImportError, type ImportReport } from "../../app/models/usage-import.server";
import { constraintDriftMessage } from "../../app/models/usage-ingest.server";
import { withCliDatabase } from "./database";
import type { CliCommand } from "./types";

const OPTIONS = ["--dry-run", "--strict"] as const;

const argsSchema = z
  .array(z.string())
  .transform((args) => ({ files: args.filter((a) => !a.startsWith("--")), options: args.filter((a) => a.startsWith("--")) }))
  .pipe(
    z.object({
      options: z.array(z.enum(OPTIONS, { errorMap: (_issue, ctx) => ({ message: `unknown option ${JSON.stringify(ctx.data)}; options are ${OPTIONS.join(", ")}` }) })),
      files: z
        .array(z.string())
        .length(1, "give exactly one file: import-usage <file.csv> (or - for standard input)")
        .refine((files) => files.length !== 1 || files[0] === "-" || fs.existsSync(files[0]!), ([file]) => ({ message: `file ${JSON.stringify(file)} does not exist` })),
    }),
  );

function rate(rows: number, ms: number): string {
  return ms > 0 ? `${formatInt((rows * 1000) / ms)} rows/s` : "n/a";
}

function printReport(report: ImportReport, dryRun: boolean): void {
  const outcome = report.committed
    ? report.rejected > 0
      ? "loaded the valid lines; the rejected ones below were not stored (exit code 1)"
      : "loaded"
    : dryRun
      ? "dry run: nothing stored (this is what a real run would do)"
      : "refused (--strict and some lines were rejected): nothing stored";
  console.log(`import-usage: ${outcome}`);
  console.log(`  lines read:  ${formatInt(report.lines)}`);
  console.log(`  ${dryRun ? "would load: " : "loaded:     "} ${formatInt(report.loaded)}`);
  console.log(`  duplicates:  ${formatInt(report.duplicates)} (event_id already stored or repeated in the file)`);
  console.log(`  rejected:    ${formatInt(report.rejected)}`);
  if (report.rejections.length > 0) {
    const more = report.rejected - report.rejections.length;
    console.log(`  rejected lines${more > 0 ? ` (first ${report.rejections.length}, ${formatInt(more)} more)` : ""}:`);
    for (const rejection of report.rejections) console.log(`    ${rejection}`);
  }
  console.log(`  time:        ${(report.elapsedMs / 1000).toFixed(2)} s (${rate(report.lines, report.elapsedMs)})`);
}

export const command: CliCommand = {
  summary: "bulk-load usage rows from a CSV file (COPY); --dry-run validates only, --strict refuses the file on any bad line",
  run: async (args) => {
    const parsed = argsSchema.safeParse(args);
    if (!parsed.success) {
      console.error(`import-usage: ${parsed.error.issues[0]?.message}`);
      return 2;
    }
    const file = parsed.data.files[0]!;
    const dryRun = parsed.data.options.includes("--dry-run");
    const strict = parsed.data.options.includes("--strict");
    return withCliDatabase(async ({ pool }) => {
      const input: Readable = file === "-" ? process.stdin : fs.createReadStream(file);
      try {
        const report = await importUsageCsv(pool, input, {
          actor: { id: null, label: "cli:import-usage" },
          source: file,
          dryRun,
          strict,
          onProgress: (p) => console.error(`  … ${formatInt(p.lines)} lines read, ${formatInt(p.rejected)} rejected (${rate(p.lines, p.elapsedMs)})`),
        });
        printReport(report, dryRun);
        return report.rejected > 0 ? 1 : 0;
      } catch (error) {
        const drift = constraintDriftMessage(error);
        if (drift) {
          console.error(`import-usage: ${drift}`);
          return 1;
        }
        if (!(error instanceof UsageImportError)) throw error;
        console.error("import-usage: the file cannot be imported; nothing was stored");
        for (const message of error.messages) console.error(`  ${message}`);
        return 1;
      }
    });
  },
};
